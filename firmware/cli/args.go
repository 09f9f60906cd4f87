package cli

import "path/filepath"

// FenceAgentName is the name Pacemaker knows the agent by: vigil, or a
// link to it, installed under that name runs as vigil fence-agent.
const FenceAgentName = "fence_vigil"

// CommandArgs turns the binary's argv into Run's arguments: argv[1:], or,
// when the binary runs as fence_vigil, the fence-agent command.
func CommandArgs(argv []string) []string {
	if len(argv) > 0 && filepath.Base(argv[0]) == FenceAgentName {
		return append([]string{"fence-agent"}, argv[1:]...)
	}
	if len(argv) == 0 {
		return nil
	}
	return argv[1:]
}
