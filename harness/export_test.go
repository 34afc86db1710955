package harness

// SourceAfterRequest lets the external tests name the state source of the
// in-flight phase, which is not part of the package's API.
const SourceAfterRequest = sourceAfterRequest
