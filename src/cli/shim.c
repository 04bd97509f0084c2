/* fogport shim: the per-container supervisor the agent starts (hidden from
 * the help; see agent/shim.h). */
#include "agent/shim.h"
#include "cli/cli.h"

int fp_cmd_shim(int argc, char **argv)
{
    return fp_shim_main(argc, argv);
}
