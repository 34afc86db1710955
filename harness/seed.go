package harness

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/halfopen/halfopen/report"
)

// envSeed names the environment variable that fixes a suite's or a gate's
// run seed (halfopen run has --seed).
const envSeed = "HALFOPEN_SEED"

// RunSeed is the seed of a run that was given none: HALFOPEN_SEED when it
// is set, otherwise one from the clock. Whatever it returns is printed
// (SeedLine) and recorded in the report, so any run can be reproduced.
func RunSeed() (int64, error) {
	if v := os.Getenv(envSeed); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not an integer seed", envSeed, v)
		}
		return n, nil
	}
	return time.Now().UnixNano() % 1_000_000_000, nil
}

// seedLine is the one line a run prints about its seed.
func seedLine(seed int64) string {
	return fmt.Sprintf("halfopen: seed %d (reproduce with --seed %d or %s=%d)", seed, seed, envSeed, seed)
}

// cellHash mixes the run's seed with a cell's key, and a sample's index
// when it is not negative: a cell's samples depend on nothing else, not on
// where the cell sits in its matrix.
func cellHash(run int64, k report.CellKey, index int) uint64 {
	h := sha256.New()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(run))
	binary.LittleEndian.PutUint64(b[8:], uint64(int64(index)))
	h.Write(b[:])
	h.Write([]byte(k.String()))
	return binary.LittleEndian.Uint64(h.Sum(nil)[:8])
}

// sampleSeed is the seed of sample index of the cell with key k in a run
// seeded run: derived from the three only (detector, fault, side, kind and
// phase are the key), positive and below 10¹², short enough for file names.
func sampleSeed(run int64, k report.CellKey, index int) int64 {
	return int64(cellHash(run, k, index) % 1_000_000_000_000)
}

// strata returns, for each of a cell's n samples, the stratum of the idle
// range it draws its idle time in: a permutation of 0..n-1 seeded by the
// run and the cell's key, so that every run covers the range's early and
// late ends, in an order that varies with the seed.
func strata(run int64, k report.CellKey, n int) []int {
	h := cellHash(run, k, -1)
	return rand.New(rand.NewPCG(h, h>>17|1)).Perm(n)
}

// stratifiedIdle draws an idle time in stratum of n strata of
// [0, MaxRandomIdle], uniformly within it.
func stratifiedIdle(rng *rand.Rand, stratum, n int) time.Duration {
	if n <= 0 {
		n, stratum = 1, 0
	}
	width := int64(MaxRandomIdle) / int64(n)
	lo := int64(stratum) * width
	if stratum == n-1 {
		width = int64(MaxRandomIdle) - lo + 1 // the last stratum includes MaxRandomIdle
	}
	return time.Duration(lo + rng.Int64N(width))
}
