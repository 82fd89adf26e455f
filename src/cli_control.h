/*
 * cli_control.h - the workflow commands of the lakefuse command line,
 * which work through a mount's .lakefs/ control files and need no lakeFS
 * credentials: commit, status, diff, merge, branch, umount.
 */
#ifndef LAKEFUSE_CLI_CONTROL_H
#define LAKEFUSE_CLI_CONTROL_H

/* argv[0] is the command. The exit status, or -1 when argv[0] is not one
 * of these commands. */
int control_command(int argc, char **argv);

#endif
