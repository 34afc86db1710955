package report

import (
	"fmt"
	"strings"
)

// legends numbers the long texts that many cells share (the rationales of
// their predictions, their notes and their sysctl sets), so each is
// printed once and cells refer to it.
type legends struct {
	Rules   []legendEntry
	Notes   []legendEntry
	Sysctls []sysctlSet
	rule    map[string]int // text → index
	note    map[string]int
	sysctl  map[string]int // canonical set → index
}

// legendEntry is one numbered text and how many cells refer to it.
type legendEntry struct {
	Text  string
	Cells int
}

// sysctlSet is one distinct set of per-role sysctls and the cells that ran
// with it.
type sysctlSet struct {
	Roles []sysctlRole
	Cells []int
}

// sysctlRole is one host role's sysctls.
type sysctlRole struct {
	Role   string
	Values [][2]string
}

func newLegends(r *Report) legends {
	lg := legends{rule: map[string]int{}, note: map[string]int{}, sysctl: map[string]int{}}
	add := func(list *[]legendEntry, idx map[string]int, text string) {
		if text == "" {
			return
		}
		i, ok := idx[text]
		if !ok {
			i = len(*list)
			idx[text] = i
			*list = append(*list, legendEntry{Text: text})
		}
		(*list)[i].Cells++
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		add(&lg.Rules, lg.rule, c.PredictedRule)
		add(&lg.Notes, lg.note, c.Note)
		if len(c.Sysctls) == 0 {
			continue
		}
		key := sysctlKey(c.Sysctls)
		j, ok := lg.sysctl[key]
		if !ok {
			j = len(lg.Sysctls)
			lg.sysctl[key] = j
			set := sysctlSet{}
			// Hosts that ran with the same values share one entry.
			byValues := map[string]int{}
			for _, role := range sortedKeys(c.Sysctls) {
				key := sysctlKey(map[string]map[string]string{"": c.Sysctls[role]})
				if j, ok := byValues[key]; ok {
					set.Roles[j].Role += ", " + role
					continue
				}
				byValues[key] = len(set.Roles)
				sr := sysctlRole{Role: role}
				for _, k := range sortedKeys(c.Sysctls[role]) {
					sr.Values = append(sr.Values, [2]string{k, c.Sysctls[role][k]})
				}
				set.Roles = append(set.Roles, sr)
			}
			lg.Sysctls = append(lg.Sysctls, set)
		}
		lg.Sysctls[j].Cells = append(lg.Sysctls[j].Cells, i)
	}
	return lg
}

// sysctlKey is a canonical text of a set of per-role sysctls.
func sysctlKey(m map[string]map[string]string) string {
	var b strings.Builder
	for _, role := range sortedKeys(m) {
		for _, k := range sortedKeys(m[role]) {
			fmt.Fprintf(&b, "%s/%s=%s\n", role, k, m[role][k])
		}
	}
	return b.String()
}

// ruleRef, noteRef and sysctlRef return the legend labels of a cell's
// rationale, note and sysctl set ("R3", "N1", "S2"), or "".
func (lg *legends) ruleRef(c *Cell) string {
	if i, ok := lg.rule[c.PredictedRule]; ok && c.PredictedRule != "" {
		return fmt.Sprintf("R%d", i+1)
	}
	return ""
}

func (lg *legends) noteRef(c *Cell) string {
	if i, ok := lg.note[c.Note]; ok && c.Note != "" {
		return fmt.Sprintf("N%d", i+1)
	}
	return ""
}

func (lg *legends) sysctlRef(c *Cell) string {
	if len(c.Sysctls) == 0 {
		return ""
	}
	if i, ok := lg.sysctl[sysctlKey(c.Sysctls)]; ok {
		return fmt.Sprintf("S%d", i+1)
	}
	return ""
}
