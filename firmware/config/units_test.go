package config

import (
	"testing"
	"time"
)

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Duration
		err      bool
	}{
		{name: "millis", in: "100ms", want: 100 * time.Millisecond},
		{name: "seconds", in: "4s", want: 4 * time.Second},
		{name: "compound", in: "1m30s", want: 90 * time.Second},
		{name: "negative", in: "-1s", want: -time.Second},
		{name: "no unit", in: "100", err: true},
		{name: "empty", in: "", err: true},
		{name: "bad unit", in: "4sec", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("UnmarshalText(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && d.D() != tt.want {
				t.Errorf("UnmarshalText(%q) = %v, want %v", tt.in, d, tt.want)
			}
		})
	}
}

func TestSizeUnmarshal(t *testing.T) {
	tests := []struct {
		name, in string
		want     Size
		err      bool
	}{
		{name: "mib", in: "512MiB", want: 512},
		{name: "gib", in: "8GiB", want: 8192},
		{name: "tib", in: "1TiB", want: 1 << 20},
		{name: "kib whole mib", in: "2048KiB", want: 2},
		{name: "plain mib", in: "4096", want: 4096},
		{name: "space before unit", in: "8 GiB", want: 8192},
		{name: "zero", in: "0GiB", want: 0},
		{name: "kib not whole mib", in: "512KiB", err: true},
		{name: "decimal unit", in: "8GB", err: true},
		{name: "fraction", in: "1.5GiB", err: true},
		{name: "negative", in: "-1GiB", err: true},
		{name: "plus sign", in: "+1GiB", err: true},
		{name: "unit only", in: "GiB", err: true},
		{name: "empty", in: "", err: true},
		{name: "too large", in: "9999999999TiB", err: true},
		{name: "int64 overflow", in: "99999999999999999999", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Size
			err := s.UnmarshalText([]byte(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("UnmarshalText(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if !tt.err && s != tt.want {
				t.Errorf("UnmarshalText(%q) = %d MiB, want %d MiB", tt.in, s, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0MiB"},
		{1, "1MiB"},
		{1536, "1536MiB"},
		{8192, "8GiB"},
		{1 << 20, "1TiB"},
		{3 << 20, "3TiB"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", tt.in, got, tt.want)
		}
		var back Size
		if err := back.UnmarshalText([]byte(tt.in.String())); err != nil || back != tt.in {
			t.Errorf("round trip of %d: got %d, %v", tt.in, back, err)
		}
	}
}
