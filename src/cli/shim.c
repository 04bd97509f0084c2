/* The agent's helper commands, hidden from the help. fogport shim: the
 * per-container supervisor the agent starts (see agent/shim.h). */
#include "agent/shim.h"
#include "agent/unpack_proc.h"
#include "cli/cli.h"

int fp_cmd_shim(int argc, char **argv)
{
    return fp_shim_main(argc, argv);
}

/* fogport unpack-layer: one layer unpacked for the agent, in a process of
 * its own (hidden from the help; see agent/unpack_proc.h). */
int fp_cmd_unpack_layer(int argc, char **argv)
{
    return fp_layer_unpack_main(argc, argv);
}
