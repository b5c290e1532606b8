package sandbox

// MaybeInit is called first thing in main (and in every test binary that
// starts containers). It takes over the process only when it is
// libcontainer's own re-exec; otherwise it returns and does nothing.
func MaybeInit() {}
