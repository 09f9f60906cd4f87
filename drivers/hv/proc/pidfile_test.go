package proc

import "testing"

func TestParseStat(t *testing.T) {
	// 52 fields, as in Linux 6.x; field 22 (start time) is 4242.
	tail := " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49"
	tests := []struct {
		name      string
		line      string
		state     byte
		start     uint64
		wantError bool
	}{
		{name: "plain", line: "123 (vigil)" + tail, state: 'S', start: 4242},
		{name: "spaces and parens in comm", line: "123 (a) b (c) d)" + tail, state: 'S', start: 4242},
		{name: "zombie", line: "123 (x) Z" + tail[2:], state: 'Z', start: 4242},
		{name: "no comm", line: "123 x S 1", wantError: true},
		{name: "truncated", line: "123 (x) S 1 2 3", wantError: true},
		{name: "bad start", line: "123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -1", wantError: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state, start, err := parseStat([]byte(tc.line))
			if tc.wantError {
				if err == nil {
					t.Errorf("parseStat = %c, %d; want an error", state, start)
				}
				return
			}
			if err != nil || state != tc.state || start != tc.start {
				t.Errorf("parseStat = %c, %d, %v; want %c, %d", state, start, err, tc.state, tc.start)
			}
		})
	}
}

func TestPidfile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    procID
		wantErr bool
	}{
		{name: "valid", content: "12 345\n", want: procID{PID: 12, Start: 345}},
		{name: "one field", content: "12\n", wantErr: true},
		{name: "zero pid", content: "0 5\n", wantErr: true},
		{name: "negative start", content: "12 -5\n", wantErr: true},
		{name: "empty", content: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePidfile([]byte(tc.content))
			if tc.wantErr != (err != nil) || got != tc.want {
				t.Errorf("parsePidfile(%q) = %v, %v; want %v, error %v", tc.content, got, err, tc.want, tc.wantErr)
			}
			if err == nil {
				if back, _ := parsePidfile(formatPidfile(got)); back != got {
					t.Errorf("round trip %v -> %v", got, back)
				}
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"web1", true}, {"a.b_c-d", true}, {"", false}, {".x", false}, {"-x", false},
		{"a/b", false}, {"a b", false}, {string(make([]byte, 65)), false},
	}
	for _, tc := range tests {
		if got := checkName(tc.name) == nil; got != tc.ok {
			t.Errorf("checkName(%q) ok = %v; want %v", tc.name, got, tc.ok)
		}
	}
}
