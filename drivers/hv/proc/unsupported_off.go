//go:build vigil_nohvproc

package proc

import (
	"fmt"

	"github.com/vigil-ha/vigil/firmware/features"
)

var errUnsupported = fmt.Errorf("proc: %w", features.NotBuilt("HV_PROC"))
