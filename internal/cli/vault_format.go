package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/vault/api"
	"sigs.k8s.io/yaml"
)

// Table layout constants matching the vault CLI's output.
const (
	// tableDelim separates columns in the rows handed to columnize; chosen
	// because it is unlikely to appear in a secret.
	tableDelim = "♨"
	// columnGlue is the space between table columns.
	columnGlue = "    "
	// emptyCell is printed for an empty table cell.
	emptyCell = "n/a"
	// maxLineLength is the width prose is wrapped at.
	maxLineLength = 78
)

// columnize aligns rows of delim-separated cells into columns separated by
// columnGlue. Cells are trimmed; empty cells print as "n/a"; the last cell
// of a row is not padded.
func columnize(rows []string, delim string) string {
	cells := make([][]string, len(rows))
	var widths []int
	for i, r := range rows {
		parts := strings.Split(r, delim)
		for j, p := range parts {
			p = strings.TrimSpace(p)
			if p == "" {
				p = emptyCell
			}
			parts[j] = p
			w := utf8.RuneCountInString(p)
			if j >= len(widths) {
				widths = append(widths, w)
			} else if w > widths[j] {
				widths[j] = w
			}
		}
		cells[i] = parts
	}
	var sb strings.Builder
	for i, parts := range cells {
		if i > 0 {
			sb.WriteByte('\n')
		}
		for j, p := range parts {
			if j == len(parts)-1 {
				sb.WriteString(p)
				break
			}
			sb.WriteString(p)
			sb.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(p)))
			sb.WriteString(columnGlue)
		}
	}
	return sb.String()
}

// tableOutput inserts a dashed underline below the header row (rows[0]) and
// columnizes the rows.
func tableOutput(rows []string, delim string) string {
	if len(rows) == 0 {
		return ""
	}
	headers := strings.Split(rows[0], delim)
	under := make([]string, len(headers))
	for i, h := range headers {
		under[i] = strings.Repeat("-", utf8.RuneCountInString(strings.TrimSpace(h)))
	}
	out := make([]string, 0, len(rows)+1)
	out = append(out, rows[0], strings.Join(under, delim))
	out = append(out, rows[1:]...)
	return columnize(out, delim)
}

// humanDuration prints d like time.Duration.String without zero minute and
// second parts ("768h", "1h30m", "45s").
func humanDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if i := strings.Index(s, "h0m"); i > 0 {
		s = s[:i+1] + s[i+3:]
	}
	return s
}

// humanDurationValue renders a number of seconds as a human duration;
// other values are returned unchanged.
func humanDurationValue(v any) any {
	switch n := v.(type) {
	case int:
		return humanDuration(time.Duration(n) * time.Second)
	case int64:
		return humanDuration(time.Duration(n) * time.Second)
	case json.Number:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return humanDuration(time.Duration(i) * time.Second)
		}
		if f, err := strconv.ParseFloat(string(n), 64); err == nil {
			return humanDuration(time.Duration(f * float64(time.Second)))
		}
	}
	return v
}

// looksLikeDuration reports whether a field named k holds a duration in
// seconds (ttl, *_ttl, period, *_period, duration, *_duration, ...).
func looksLikeDuration(k string) bool {
	return k == "period" || strings.HasSuffix(k, "_period") ||
		k == "ttl" || strings.HasSuffix(k, "_ttl") ||
		k == "duration" || strings.HasSuffix(k, "_duration") ||
		k == "lease_max" || k == "ttl_max"
}

// wrapAtLength wraps s at maxLineLength-pad columns with minimal
// raggedness and indents every line by pad spaces.
func wrapAtLength(s string, pad int) string {
	lines := wrapWords(strings.Fields(s), maxLineLength-pad)
	prefix := strings.Repeat(" ", pad)
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// wrapWords breaks words into lines of at most limit runes (longer only when
// a single word is longer), minimising the sum of squared slack over all
// lines but the last.
func wrapWords(words []string, limit int) []string {
	n := len(words)
	if n == 0 {
		return []string{""}
	}
	const overlongPenalty = 100000
	// prefix[i] is the total rune count of words[:i].
	prefix := make([]int, n+1)
	for i, w := range words {
		prefix[i+1] = prefix[i] + utf8.RuneCountInString(w)
	}
	// lineLen(i, j) is the width of words[i..j] joined by single spaces.
	lineLen := func(i, j int) int { return prefix[j+1] - prefix[i] + j - i }
	cost := make([]int, n+1)
	next := make([]int, n)
	for i := n - 1; i >= 0; i-- {
		if lineLen(i, n-1) <= limit {
			cost[i], next[i] = 0, n
			continue
		}
		cost[i] = math.MaxInt
		for j := i + 1; j < n; j++ {
			l := lineLen(i, j-1)
			slack := limit - l
			c := slack*slack + cost[j]
			if l > limit {
				c += overlongPenalty
			}
			if c < cost[i] {
				cost[i], next[i] = c, j
			}
		}
	}
	var lines []string
	for i := 0; i < n; i = next[i] {
		lines = append(lines, strings.Join(words[i:next[i]], " "))
	}
	return lines
}

// padEqualSigns centres header in a run of '=' about totalLen wide.
func padEqualSigns(header string, totalLen int) string {
	eq := totalLen - (len(header) + 2)
	if eq <= 0 {
		eq = 4
	}
	if eq%2 != 0 {
		eq++
	}
	side := strings.Repeat("=", eq/2)
	return side + " " + header + " " + side
}

// headerForMap returns the "=== Title ===" line sized for a key/value table
// of data.
func headerForMap(header string, data map[string]any) string {
	maxKey := 0
	for k := range data {
		if len(k) > maxKey {
			maxKey = len(k)
		}
	}
	return padEqualSigns(header, maxKey+4+5)
}

// outputPath prints a "== Title ==" header, the path and a blank line.
func (m *vaultMeta) outputPath(p, title string) {
	m.output(padEqualSigns(title, len(p)))
	m.output(p)
	m.output("")
}

// formatBytes renders data in the json or yaml output format.
func formatBytes(format string, data any) ([]byte, error) {
	b, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return nil, err
	}
	if format == "yaml" || format == "yml" {
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return nil, err
		}
		return []byte(strings.TrimSpace(string(y))), nil
	}
	return b, nil
}

// outputData prints data in the selected format and returns the exit code.
// The table format understands secrets, maps and lists.
func (m *vaultMeta) outputData(data any) int {
	f := m.outputFormat()
	if f != "table" {
		if f == "raw" {
			m.errorf("Could not parse output: This command does not support the -format=raw option; only `vault read` does.")
			return exitLocal
		}
		b, err := formatBytes(f, data)
		if err != nil {
			m.errorf("Could not parse output: %s", err)
			return exitLocal
		}
		m.output(string(b))
		return exitOK
	}
	switch d := data.(type) {
	case *api.Secret:
		m.printSecretTable(d)
	case map[string]any:
		m.printMapTable(d)
	case []string:
		m.printListTable(d)
	case []any:
		keys, err := stringList(d)
		if err != nil {
			m.errorf("Could not parse output: %s", err)
			return exitLocal
		}
		m.printListTable(keys)
	default:
		m.errorf("Could not parse output: cannot use the table formatter for this type")
		return exitLocal
	}
	return exitOK
}

// outputSecret prints a secret in the selected format.
func (m *vaultMeta) outputSecret(s *api.Secret) int {
	if s == nil {
		return exitOK
	}
	return m.outputData(s)
}

// printWarnings prints a secret's warnings to stderr, as the table format
// does.
func (m *vaultMeta) printWarnings(s *api.Secret) {
	if s == nil || len(s.Warnings) == 0 {
		return
	}
	_, _ = fmt.Fprintln(m.env.Stderr, "WARNING! The following warnings were returned from Vault:")
	_, _ = fmt.Fprintln(m.env.Stderr)
	for _, w := range s.Warnings {
		_, _ = fmt.Fprintln(m.env.Stderr, wrapAtLength("* "+w, 2))
		_, _ = fmt.Fprintln(m.env.Stderr)
	}
}

// secretRows returns the key/value rows of a secret's table output.
func secretRows(s *api.Secret) []string {
	var out []string
	row := func(k string, v any) { out = append(out, fmt.Sprintf("%s %s %v", k, tableDelim, v)) }
	if s.LeaseDuration > 0 {
		if s.LeaseID != "" {
			row("lease_id", s.LeaseID)
			row("lease_duration", humanDurationValue(s.LeaseDuration))
			row("lease_renewable", s.Renewable)
		} else {
			row("refresh_interval", humanDurationValue(s.LeaseDuration))
		}
	}
	if a := s.Auth; a != nil {
		row("token", a.ClientToken)
		row("token_accessor", a.Accessor)
		if a.LeaseDuration == 0 {
			row("token_duration", "∞")
		} else {
			row("token_duration", humanDurationValue(a.LeaseDuration))
		}
		row("token_renewable", a.Renewable)
		row("token_policies", fmt.Sprintf("%q", a.TokenPolicies))
		row("identity_policies", fmt.Sprintf("%q", a.IdentityPolicies))
		row("policies", fmt.Sprintf("%q", a.Policies))
		metaKeys := make([]string, 0, len(a.Metadata))
		for k := range a.Metadata {
			metaKeys = append(metaKeys, k)
		}
		sort.Strings(metaKeys)
		for _, k := range metaKeys {
			row("token_meta_"+k, a.Metadata[k])
		}
	}
	if w := s.WrapInfo; w != nil {
		row("wrapping_token:", w.Token)
		row("wrapping_accessor:", w.Accessor)
		row("wrapping_token_ttl:", humanDurationValue(w.TTL))
		row("wrapping_token_creation_time:", w.CreationTime.String())
		row("wrapping_token_creation_path:", w.CreationPath)
		if w.WrappedAccessor != "" {
			row("wrapped_accessor:", w.WrappedAccessor)
		}
	}
	out = append(out, mapRows(s.Data)...)
	return out
}

// mapRows returns sorted "key ♨ value" rows, durations humanised.
func mapRows(data map[string]any) []string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		v := data[k]
		if looksLikeDuration(k) {
			v = humanDurationValue(v)
		}
		out = append(out, fmt.Sprintf("%s %s %v", k, tableDelim, v))
	}
	return out
}

func (m *vaultMeta) printSecretTable(s *api.Secret) {
	m.printWarnings(s)
	rows := secretRows(s)
	if len(rows) == 0 {
		return
	}
	m.output(tableOutput(append([]string{"Key" + tableDelim + "Value"}, rows...), tableDelim))
}

func (m *vaultMeta) printMapTable(data map[string]any) {
	rows := mapRows(data)
	if len(rows) == 0 {
		return
	}
	m.output(tableOutput(append([]string{"Key" + tableDelim + "Value"}, rows...), tableDelim))
}

func (m *vaultMeta) printListTable(keys []string) {
	if len(keys) == 0 {
		return
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	m.output(tableOutput(append([]string{"Keys"}, sorted...), tableDelim))
}

// stringList converts a JSON list of strings.
func stringList(l []any) ([]string, error) {
	out := make([]string, len(l))
	for i, v := range l {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", v)
		}
		out[i] = s
	}
	return out, nil
}

// secretField extracts one field of a secret as the vault CLI's -field does:
// auth fields first, then wrap info, then data, then lease fields.
func secretField(s *api.Secret, field string) any {
	if s == nil {
		return nil
	}
	if a := s.Auth; a != nil {
		switch field {
		case "token":
			return a.ClientToken
		case "token_accessor":
			return a.Accessor
		case "token_duration":
			return a.LeaseDuration
		case "token_renewable":
			return a.Renewable
		case "token_policies":
			return a.TokenPolicies
		case "identity_policies":
			return a.IdentityPolicies
		case "policies":
			return a.Policies
		}
		if v, ok := a.Metadata[strings.TrimPrefix(field, "token_meta_")]; ok {
			return v
		}
	}
	if w := s.WrapInfo; w != nil {
		switch field {
		case "wrapping_token":
			return w.Token
		case "wrapping_accessor":
			return w.Accessor
		case "wrapping_token_ttl":
			return w.TTL
		case "wrapping_token_creation_time":
			return w.CreationTime.String()
		case "wrapping_token_creation_path":
			return w.CreationPath
		case "wrapped_accessor":
			return w.WrappedAccessor
		}
	}
	if v, ok := s.Data[field]; ok && v != nil {
		return v
	}
	switch field {
	case "refresh_interval", "lease_duration":
		return s.LeaseDuration
	case "lease_id":
		return s.LeaseID
	case "lease_renewable":
		return s.Renewable
	}
	return nil
}

// printField prints one field of data (a secret or a map) raw: no trailing
// newline unless stdout is a terminal. json/yaml formats encode the value.
func (m *vaultMeta) printField(data any, field string) int {
	var v any
	switch d := data.(type) {
	case *api.Secret:
		v = secretField(d, field)
	case map[string]any:
		v = d[field]
	}
	if v == nil {
		m.errorf("Field %q not present in secret", field)
		return exitLocal
	}
	var s string
	switch f := m.outputFormat(); f {
	case "table", "raw":
		s = fmt.Sprintf("%v", v)
	default:
		b, err := formatBytes(f, v)
		if err != nil {
			m.errorf("Could not parse output: %s", err)
			return exitLocal
		}
		s = string(b)
	}
	_, _ = fmt.Fprint(m.env.Stdout, s)
	if isTerminal(m.env.Stdout) {
		_, _ = fmt.Fprintln(m.env.Stdout)
	}
	return exitOK
}
