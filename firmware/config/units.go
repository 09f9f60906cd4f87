package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("100ms",
// "4s", "1m30s"). A bare number is rejected: it has no unit.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the Go duration string of d.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: write a number with a unit, like \"100ms\" or \"4s\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Size is an amount of memory in MiB. In a file it is a string with a unit
// ("512MiB", "8GiB", "1TiB", "4194304KiB") or a plain integer of MiB.
type Size int64

// MiB is a size's value in MiB.
func (s Size) MiB() int64 { return int64(s) }

var sizeUnits = []struct {
	name string
	kib  int64 // KiB per unit
}{
	{"TiB", 1 << 30},
	{"GiB", 1 << 20},
	{"MiB", 1 << 10},
	{"KiB", 1},
}

// String writes s with the largest unit that divides it exactly.
func (s Size) String() string {
	if s == 0 {
		return "0MiB"
	}
	kib := int64(s) << 10
	for _, u := range sizeUnits[:3] {
		if kib%u.kib == 0 {
			return strconv.FormatInt(kib/u.kib, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "MiB"
}

// maxSizeKiB bounds a size (1 EiB) so that unit arithmetic cannot overflow.
const maxSizeKiB = 1 << 50

// UnmarshalText parses a size with a KiB, MiB, GiB or TiB unit, or a plain
// integer of MiB. The result must be a whole number of MiB.
func (s *Size) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	bad := fmt.Errorf("size %q: write a whole number with a unit KiB, MiB, GiB or TiB, like \"8GiB\"", b)
	num, unit := text, "MiB"
	for _, u := range sizeUnits {
		if strings.HasSuffix(text, u.name) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(text, u.name)), u.name
			break
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return bad
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return bad
	}
	var per int64
	for _, u := range sizeUnits {
		if u.name == unit {
			per = u.kib
		}
	}
	if n > maxSizeKiB/per {
		return fmt.Errorf("size %q is too large", b)
	}
	kib := n * per
	if kib%1024 != 0 {
		return fmt.Errorf("size %q is not a whole number of MiB", b)
	}
	*s = Size(kib >> 10)
	return nil
}

// MarshalText writes s with its largest exact unit.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
