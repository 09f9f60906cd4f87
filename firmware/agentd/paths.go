package agentd

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigil-ha/vigil/firmware/config"
)

// overridePaths points the datastores named in paths at this host's own
// path to them: a folder stays a folder datastore, a device a device one.
func overridePaths(cfg *config.Config, paths map[string]string) error {
	var names []string
	for _, ds := range cfg.Datastores {
		names = append(names, ds.Name)
	}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		p := paths[name]
		i := -1
		for j, ds := range cfg.Datastores {
			if ds.Name == name {
				i = j
			}
		}
		if i < 0 {
			return fmt.Errorf("agent: --datastore %s=%s: the cluster file has no datastore %q (fix: name one of %s)", name, p, name, strings.Join(names, ", "))
		}
		if !filepath.IsAbs(p) {
			return fmt.Errorf("agent: --datastore %s=%s: not an absolute path (fix: give this host's full path to the datastore)", name, p)
		}
		if cfg.Datastores[i].Device != "" {
			cfg.Datastores[i].Device = p
		} else {
			cfg.Datastores[i].Path = p
		}
	}
	return nil
}

// ParseDatastorePath parses one --datastore NAME=PATH argument into m.
func ParseDatastorePath(m map[string]string, arg string) error {
	name, path, ok := strings.Cut(arg, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("--datastore %q: want NAME=PATH (fix: for example --datastore ds1=/dev/sdc)", arg)
	}
	if _, dup := m[name]; dup {
		return fmt.Errorf("--datastore %q: datastore %s is given twice (fix: give each datastore once)", arg, name)
	}
	m[name] = path
	return nil
}
