package sandbox

import (
	"os"
	"sync"

	"github.com/agentexec/agentexec/internal/netns"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// Prewarm makes ahead, in the background, the parts of the next Run that
// do not depend on its Spec, so that they overlap the caller's own work
// (the front door calls Prewarm before it loads the policy):
//
//   - the container's id and its cgroups: a pool slot's (cgpool.go), or,
//     where there is no pool, its own group in every hierarchy
//     (makeCgroups),
//   - the user namespace that holds the idmapped mounts' mapping: the one
//     kept for the mapping (netpool.go), or made (idmapUserns: a clone and
//     two map writes),
//   - the container's network namespace with loopback up: leased from the
//     pool (netpool.go), or made (internal/netns: among the dearest steps
//     of a start, and the init would bring loopback up over netlink after
//     it),
//   - Go's one-time check that pidfds work, which clones a child.
//
// Each is taken by one Run; only one set waits at a time.
// Only a root caller gets the cgroups and namespaces: a rootless one
// cannot make these namespaces outside a user namespace of its own, nor
// cgroups.

// ahead is one thing made in the background for the next Run.
type ahead[T any] struct {
	mu sync.Mutex
	ch chan T
}

// start begins making one, unless one is already on its way.
func (a *ahead[T]) start(build func() T) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch != nil {
		return
	}
	ch := make(chan T, 1)
	a.ch = ch
	go func() { ch <- build() }()
}

// take returns the one under way (waiting for it) or, when there is none
// (another Run took it), builds one now.
func (a *ahead[T]) take(build func() T) T {
	if v, ok := a.drop(); ok {
		return v
	}
	return build()
}

// drop takes the one under way, if there is one, waiting for it.
func (a *ahead[T]) drop() (T, bool) {
	a.mu.Lock()
	ch := a.ch
	a.ch = nil
	a.mu.Unlock()
	if ch == nil {
		var zero T
		return zero, false
	}
	return <-ch, true
}

// nsFile is a namespace made ahead; a network namespace from the pool
// (netpool.go) comes with its lease.
type nsFile struct {
	f     *os.File
	lease *netLease
	err   error
}

func (n nsFile) close() {
	switch {
	case n.lease != nil:
		n.lease.close()
	case n.f != nil:
		n.f.Close()
	}
}

// madeGroups are a container's cgroups made ahead: its own (made, removed
// by libcontainer with the container) or a pool slot's (path and lease,
// cgpool.go; kept).
type madeGroups struct {
	id    string
	made  []string
	path  string
	lease *os.File
}

var (
	idmapAhead   ahead[nsFile]
	netnsAhead   ahead[nsFile]
	cgroupsAhead ahead[madeGroups]
)

var pidfdOnce sync.Once

func prewarmAhead() {
	if ident := currentIdentity(); !ident.rootless {
		cgroupsAhead.start(func() madeGroups { return newGroups(ident) })
		idmapAhead.start(func() nsFile { return newIdmapNS(ident) })
		netnsAhead.start(func() nsFile { return newNetNS(ident) })
	}
	// The first process Go starts makes it check, once, that pidfds work,
	// by cloning a child that exits at once: libcontainer's start would
	// otherwise wait for that probe. os.FindProcess runs the same check.
	// It is started last: the clone holds up the goroutines queued after
	// it, and the start needs it latest.
	pidfdOnce.Do(func() {
		go func() {
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Release()
			}
		}()
	})
}

// newIdmapNS opens the kept id-mapping namespace (netpool.go), or makes
// one for this container alone where it cannot be kept.
func newIdmapNS(ident identity) nsFile {
	var f *os.File
	if inStateRoot(ident, func(base string) (err error) {
		f, err = keptIdmapUserns(base, ident.mntUID, ident.mntGID)
		return err
	}) {
		return nsFile{f: f}
	}
	f, err := idmapUserns(ident.mntUID, ident.mntGID)
	return nsFile{f: f, err: err}
}

// newNetNS leases a namespace from the pool, or makes one for this
// container alone where there is no pool to use.
func newNetNS(ident identity) nsFile {
	var l *netLease
	if inStateRoot(ident, func(base string) (err error) {
		l, err = leaseNetNS(base)
		return err
	}) {
		return nsFile{f: l.ns, lease: l}
	}
	f, err := netns.New(nil)
	return nsFile{f: f, err: err}
}

func newGroups(ident identity) madeGroups {
	id := newID()
	path, err := cgroupPath(ident, id, Limits{})
	if err != nil {
		return madeGroups{id: id}
	}
	var g madeGroups
	if inStateRoot(ident, func(base string) (err error) {
		g, err = leaseCgroups(base, id)
		return err
	}) {
		return g
	}
	return madeGroups{id: id, made: makeCgroups(cgroupConfig(id, path, false, effectiveLimits(Limits{})))}
}

// inStateRoot runs take, which leases or opens something kept in the
// state root, while holding the root's shared lock (stateDirs), so that no
// tmpfs is mounted over it meanwhile; it reports whether take succeeded.
func inStateRoot(ident identity, take func(base string) error) bool {
	d, err := stateDirs(ident)
	if err != nil {
		return false
	}
	defer d.release()
	return take(d.base) == nil
}

// ReleaseAhead undoes what Prewarm made and no Run took: cgroups made for
// the container are removed, a pool slot's are given back to the pool, and
// the namespaces are closed (a pooled one given back). A caller whose command was refused
// after Prewarm calls it; with nothing pending it does nothing. A Run that
// finds nothing ahead makes what it needs itself.
func ReleaseAhead() {
	if g, ok := cgroupsAhead.drop(); ok {
		for _, p := range g.made {
			_ = os.Remove(p)
		}
		if g.lease != nil {
			g.lease.Close()
		}
	}
	for _, a := range []*ahead[nsFile]{&idmapAhead, &netnsAhead} {
		if r, ok := a.drop(); ok {
			r.close()
		}
	}
}

// aheadSet is what one Run took. A network namespace that could not be
// made is nil, and the container's init makes one as usual; the
// id-mapping namespace is required (idmapErr).
type aheadSet struct {
	id       string
	cgroups  []string
	cgPath   string   // a pool slot's cgroup path, or ""
	cgLease  *os.File // the slot's lease
	idmap    *os.File
	netns    nsFile
	idmapErr error
}

// takeAhead takes what Prewarm made, making whatever is missing now.
func takeAhead(ident identity) *aheadSet {
	s := &aheadSet{}
	if ident.rootless {
		s.id = newID()
		return s
	}
	g := cgroupsAhead.take(func() madeGroups { return newGroups(ident) })
	s.id, s.cgroups, s.cgPath, s.cgLease = g.id, g.made, g.path, g.lease
	if r := idmapAhead.take(func() nsFile { return newIdmapNS(ident) }); r.err == nil {
		s.idmap = r.f
	} else {
		s.idmapErr = r.err
	}
	if r := netnsAhead.take(func() nsFile { return newNetNS(ident) }); r.err == nil {
		s.netns = r
	}
	return s
}

// close releases the namespaces, once the container holds its own
// references (or is gone). A pooled network namespace goes back to the
// pool, so Run calls it only once the container is gone.
func (s *aheadSet) close() {
	if s.idmap != nil {
		s.idmap.Close()
	}
	s.netns.close()
	if s.cgLease != nil {
		s.cgLease.Close()
	}
}

// makeCgroups creates, ahead of libcontainer, the container's group in
// every hierarchy libcontainer will put it in, and returns those it made.
// Creating a group (a memory one above all) costs tens of microseconds per
// hierarchy, a dozen hierarchies on a cgroup v1 host, and finding where
// each hierarchy is mounted more; done ahead it overlaps other work, and
// libcontainer, finding the groups, only joins them. Run removes them if
// libcontainer never takes them over.
//
// The device rules (the same for every container) are written here too,
// by the function libcontainer's own Set calls: that Set, made while the
// container's init waits on it, then finds nothing to change, where it
// otherwise writes a dozen rules one by one.
func makeCgroups(cg *cgroups.Cgroup) []string {
	if cg.Path == "" {
		return nil
	}
	m, err := manager.New(cg)
	if err != nil {
		return nil
	}
	var made []string
	for _, p := range m.GetPaths() {
		if os.Mkdir(p, 0o755) == nil {
			made = append(made, p)
		}
	}
	if p := m.Path("devices"); p != "" && cgroups.DevicesSetV1 != nil && cg.Resources != nil {
		// An error here is libcontainer's to report: its Set tries again.
		_ = cgroups.DevicesSetV1(p, cg.Resources)
	}
	return made
}
