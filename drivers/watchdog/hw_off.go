//go:build vigil_nowatchdoghw

package watchdog

import "github.com/vigil-ha/vigil/firmware/features"

// openHW fails: the binary was built without the hardware watchdog driver.
func openHW(path string) (Device, error) {
	return nil, &OpError{Op: "open", Dev: path, Err: features.NotBuilt("WATCHDOG_HW"), Fix: "use the lab's emulated watchdog (unix:PATH), or a vigil built with CONFIG_WATCHDOG_HW"}
}
