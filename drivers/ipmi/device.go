package ipmi

import (
	"fmt"

	"github.com/bougou/go-ipmi/pkg/command/app"
)

// deviceInfo turns Get Device ID's answer into an Info.
func deviceInfo(res *app.GetDeviceIDResponse) Info {
	return Info{
		DeviceID:         res.DeviceID,
		FirmwareRevision: fmt.Sprintf("%d.%02d", res.MajorFirmwareRevision, res.MinorFirmwareRevision),
		IPMIVersion:      fmt.Sprintf("%d.%d", res.MajorIPMIVersion, res.MinorIPMIVersion),
		ManufacturerID:   res.ManufacturerID,
		ProductID:        res.ProductID,
	}
}
