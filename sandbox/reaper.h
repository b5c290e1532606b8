// Shared between reaper.c and reaper.go: where the reaper is bound inside
// every container.
#define AGENTEXEC_INIT_PATH "/run/agentexec/init"
