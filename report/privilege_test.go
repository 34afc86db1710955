package report

import (
	"reflect"
	"testing"
)

// A merged report keeps every part's privilege mode once and every thing
// a part went without, and leaves its inputs as they were.
func TestMergePrivilege(t *testing.T) {
	rt := "real-time priority is refused"
	oom := "the reaper is not exempt from the OOM killer"
	for _, tc := range []struct {
		name  string
		parts []*Privilege
		want  *Privilege
	}{
		{"none recorded", []*Privilege{nil, nil}, nil},
		{"root twice", []*Privilege{{Mode: "root"}, {Mode: "root"}}, &Privilege{Mode: "root"}},
		{"root and a user namespace", []*Privilege{{Mode: "root"}, {Mode: "user namespace (uid 1000)", Degraded: []string{rt, oom}}},
			&Privilege{Mode: "root; user namespace (uid 1000)", Degraded: []string{rt, oom}}},
		{"the same user namespace twice", []*Privilege{{Mode: "user namespace (uid 1000)", Degraded: []string{rt}}, {Mode: "user namespace (uid 1000)", Degraded: []string{rt, oom}}},
			&Privilege{Mode: "user namespace (uid 1000)", Degraded: []string{rt, oom}}},
		{"an older part without it", []*Privilege{nil, {Mode: "root"}}, &Privilege{Mode: "root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var parts []*Report
			for _, p := range tc.parts {
				parts = append(parts, &Report{Schema: SchemaV1, Environment: Environment{Privilege: p}})
			}
			before := cloneReport(parts[0]).Environment.Privilege
			m, err := Merge(parts...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Environment.Privilege, tc.want) {
				t.Errorf("merged privilege %+v, want %+v", m.Environment.Privilege, tc.want)
			}
			if !reflect.DeepEqual(parts[0].Environment.Privilege, before) {
				t.Errorf("merging changed the first part's privilege to %+v", parts[0].Environment.Privilege)
			}
		})
	}
}
