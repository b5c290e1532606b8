package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// systemDirs are the host directories every sandbox sees read-only, when
// they exist. A symlink among them (merged /usr) is recreated as the same
// symlink in the rootfs.
var systemDirs = []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"}

// DefaultHidden are the entries under Home that hold credentials; they are
// hidden in every sandbox, on top of Spec.Hidden.
var DefaultHidden = []string{
	".ssh", ".aws", ".gnupg", ".config/gh", ".docker", ".kube",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".config/gcloud",
	".azure", ".password-store", ".vault-token",
}

// persistDirs and persistFiles are names under a workspace that run code
// later, outside the sandbox (editor tasks, agent hooks and MCP servers,
// shell start-up files); they stay read-only inside.
var (
	persistDirs  = []string{".claude", ".vscode"}
	persistOther = []string{".idea", ".devcontainer"}
	persistFiles = []string{
		".mcp.json", ".envrc", ".bashrc", ".bash_profile", ".bash_login",
		".bash_logout", ".profile", ".zshrc", ".zshenv", ".zprofile", ".zlogin",
	}
)

// The walk for nested git repositories stops at this depth below the
// workspace and after this many directories, so that a large tree cannot
// make every command slow. Repositories deeper than that are not found and
// their .git/config and hooks stay writable (docs/sandbox.md).
const (
	repoWalkDepth = 4
	repoWalkDirs  = 4000
)

// skipWalk are directory names the repository walk never enters: they hold
// dependencies or build output, not repositories whose hooks run.
var skipWalk = map[string]bool{"node_modules": true, "target": true, ".cache": true}

const (
	bindRO = unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	bindRW = unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV
)

// roRec makes every submount of a recursive bind read-only too; a plain
// MS_RDONLY remount only covers the top mount.
func roRec() *unix.MountAttr {
	return &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
}

// rootHome is the superuser's home, which stays unreadable even when it is
// the caller's HOME.
const rootHome = "/root"

// sealedRootHome reports whether home is root's home with the usual 0700
// mode. It is then not mounted at all: idmapped it would become readable,
// and mounted as it is nothing inside could enter it, not even to reach a
// workspace or cache below it (those are bound on their own, and /root
// holds only the directories leading to them). A root home others may
// enter is mounted read-only with its real owners, like a system dir.
func sealedRootHome(home string) bool {
	if home != rootHome {
		return false
	}
	fi, err := os.Stat(home)
	return err != nil || fi.Mode().Perm()&0o001 == 0
}

// view is the planned file-system view of one container.
type view struct {
	mounts   []*configs.Mount
	symlinks map[string]string // rootfs-relative name -> target
	// missingFiles are persistence files that did not exist before the run;
	// if the command creates one, Run removes it afterwards.
	missingFiles []string
}

type viewInput struct {
	spec      *Spec
	id        identity
	initPath  string // host path of the binary bind-mounted as the init
	cacheDirs []string
	tmpSize   int64
	// idmapNS is a user namespace holding the idmapped mounts' mapping;
	// empty lets libcontainer make one from the mapping itself.
	idmapNS string
}

// planView turns the Spec into mounts. Every host path it binds was
// resolved without following a symlink inside the workspace (see
// workspaceDescendant), so a link planted by an earlier command cannot
// redirect a bind source or target.
func planView(in viewInput) (*view, error) {
	s := in.spec
	v := &view{symlinks: map[string]string{}}
	add := func(m *configs.Mount) { v.mounts = append(v.mounts, m) }

	add(&configs.Mount{Source: "proc", Destination: "/proc", Device: "proc", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV})
	add(&configs.Mount{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"})
	add(&configs.Mount{Source: "devpts", Destination: "/dev/pts", Device: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620"})
	add(&configs.Mount{Source: "shm", Destination: "/dev/shm", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV, Data: "mode=1777,size=65536k"})

	var visible []string // host trees visible inside, for hiding
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(d)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", d, err)
			}
			v.symlinks[strings.TrimPrefix(d, "/")] = t
			continue
		}
		if !fi.IsDir() {
			continue
		}
		add(&configs.Mount{Source: d, Destination: d, Device: "bind", Flags: bindRO, RecAttr: roRec()})
		visible = append(visible, d)
	}
	add(&configs.Mount{Source: "tmpfs", Destination: "/tmp", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: fmt.Sprintf("mode=1777,size=%d", in.tmpSize)})
	add(&configs.Mount{Source: "tmpfs", Destination: "/run", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: fmt.Sprintf("mode=755,size=65536k,uid=%d,gid=%d", in.id.inUID, in.id.inGID)})
	add(&configs.Mount{Source: in.initPath, Destination: initPath, Device: "bind", Flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV})

	idmap := func(m *configs.Mount) *configs.Mount {
		switch {
		case in.id.rootless:
		case in.idmapNS != "":
			m.IDMapping = &configs.MountIDMapping{UserNSPath: in.idmapNS}
		default:
			m.IDMapping = &configs.MountIDMapping{UIDMappings: in.id.mntUID, GIDMappings: in.id.mntGID}
		}
		return m
	}
	if s.Home != "" && !sealedRootHome(s.Home) {
		m := &configs.Mount{Source: s.Home, Destination: s.Home, Device: "bind", Flags: bindRO, RecAttr: roRec()}
		if s.Home != rootHome {
			m = idmap(m)
		}
		add(m)
		visible = append(visible, s.Home)
	}
	if s.ReadOnlyWorkspace {
		// Still idmapped: the caller's files must look like the command's
		// own (git's ownership check), only not writable.
		add(idmap(&configs.Mount{Source: s.Workspace, Destination: s.Workspace, Device: "bind", Flags: bindRO, RecAttr: roRec()}))
	} else {
		add(idmap(&configs.Mount{Source: s.Workspace, Destination: s.Workspace, Device: "bind", Flags: bindRW}))
	}
	visible = append(visible, s.Workspace)
	for _, w := range s.Writable {
		add(idmap(&configs.Mount{Source: w, Destination: w, Device: "bind", Flags: bindRW}))
		visible = append(visible, w)
	}
	for _, c := range in.cacheDirs {
		add(idmap(&configs.Mount{Source: c, Destination: c, Device: "bind", Flags: bindRW}))
		visible = append(visible, c)
	}
	for _, m := range s.Mounts {
		if m.Writable {
			add(idmap(&configs.Mount{Source: m.Source, Destination: m.Dest, Device: "bind", Flags: bindRW}))
		} else {
			add(&configs.Mount{Source: m.Source, Destination: m.Dest, Device: "bind", Flags: bindRO, RecAttr: roRec()})
		}
		visible = append(visible, m.Dest)
	}

	// Everything below is laid over the mounts above, deepest last.
	var overlays []*configs.Mount
	hide := func(p string) error {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("hiding %s: %w", p, err)
		}
		if fi.IsDir() {
			overlays = append(overlays, &configs.Mount{Source: "tmpfs", Destination: p, Device: "tmpfs",
				Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: "size=4k,mode=000"})
		} else {
			overlays = append(overlays, &configs.Mount{Source: "/dev/null", Destination: p, Device: "bind",
				Flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC})
		}
		return nil
	}
	var hidden []string
	if s.Home != "" {
		for _, h := range DefaultHidden {
			hidden = append(hidden, filepath.Join(s.Home, h))
		}
	}
	hidden = append(hidden, s.Hidden...)
	seen := map[string]bool{}
	for _, h := range hidden {
		// HOME and agentexec's own directories are the caller's, not the
		// agent's: following their symlinks is safe, and hiding the link
		// alone would leave its target readable.
		for _, p := range uniq(h, evalOrSelf(h)) {
			if seen[p] || !under(p, visible) {
				continue
			}
			seen[p] = true
			if err := hide(p); err != nil {
				return nil, err
			}
		}
	}

	prot, missing, err := persistenceVectors(s.Workspace)
	if err != nil {
		return nil, err
	}
	v.missingFiles = missing
	for _, p := range prot {
		if seen[p] {
			continue
		}
		overlays = append(overlays, &configs.Mount{Source: p, Destination: p, Device: "bind", Flags: bindRO, RecAttr: roRec()})
	}
	sort.SliceStable(overlays, func(i, j int) bool { return depth(overlays[i].Destination) < depth(overlays[j].Destination) })
	// Stable by depth keeps a parent before what is mounted inside it while
	// leaving proc, /dev and /dev/pts in their required order.
	sort.SliceStable(v.mounts, func(i, j int) bool { return depth(v.mounts[i].Destination) < depth(v.mounts[j].Destination) })
	v.mounts = append(v.mounts, overlays...)
	return v, nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

func evalOrSelf(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p
	}
	return r
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// under reports whether p is one of roots or lies below one.
func under(p string, roots []string) bool {
	for _, r := range roots {
		if p == r || strings.HasPrefix(p, strings.TrimSuffix(r, "/")+"/") {
			return true
		}
	}
	return false
}

// persistenceVectors lists the paths under the workspace to hold read-only
// (protect) and the persistence entries that are absent (missing: Run
// removes them after the command if it created them). A missing .claude/,
// .vscode/ or .git/hooks is created empty first, so that there is a
// directory to hold read-only: agent and editor settings are reloaded
// while the command still runs, so removing them afterwards would be too
// late. No symlink in the workspace is followed when choosing a bind
// source; for a persistence entry that is itself a symlink, its target is
// protected when it lies inside the workspace.
func persistenceVectors(ws string) (protect, missing []string, err error) {
	for _, d := range persistDirs {
		p := filepath.Join(ws, d)
		ok, err := ensureDir(p)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			protect = append(protect, p)
		} else if t, in := linkInside(p, ws); in {
			protect = append(protect, t)
		}
	}
	for _, f := range append(append([]string(nil), persistOther...), persistFiles...) {
		p := filepath.Join(ws, f)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, p)
		case err != nil:
			return nil, nil, fmt.Errorf("checking %s: %w", p, err)
		case fi.Mode().IsRegular() || fi.IsDir():
			protect = append(protect, p)
		case fi.Mode()&fs.ModeSymlink != 0:
			if t, ok := linkInside(p, ws); ok {
				protect = append(protect, t)
			}
		}
	}
	repos := findRepos(ws)
	for _, gitDir := range repos {
		if fi, err := os.Lstat(filepath.Join(gitDir, "config")); err == nil && fi.Mode().IsRegular() {
			protect = append(protect, filepath.Join(gitDir, "config"))
		}
		hooks := filepath.Join(gitDir, "hooks")
		if ok, err := ensureDir(hooks); err != nil {
			return nil, nil, err
		} else if ok {
			protect = append(protect, hooks)
		}
		// Submodules and linked worktrees keep their git dirs here.
		for _, sub := range []string{"modules", "worktrees"} {
			ents, err := os.ReadDir(filepath.Join(gitDir, sub))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !e.IsDir() {
					continue
				}
				d := filepath.Join(gitDir, sub, e.Name())
				if fi, err := os.Lstat(filepath.Join(d, "config")); err == nil && fi.Mode().IsRegular() {
					protect = append(protect, filepath.Join(d, "config"))
				}
				if fi, err := os.Lstat(filepath.Join(d, "hooks")); err == nil && fi.IsDir() {
					protect = append(protect, filepath.Join(d, "hooks"))
				}
			}
		}
	}
	return protect, missing, nil
}

// ensureDir makes p an existing real directory if nothing is there, owned
// like its parent. It reports false when p is something else (a file or a
// symlink), which is left alone.
func ensureDir(p string) (bool, error) {
	fi, err := os.Lstat(p)
	if err == nil {
		return fi.IsDir(), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("checking %s: %w", p, err)
	}
	parent, err := os.Lstat(filepath.Dir(p))
	if err != nil || !parent.IsDir() {
		return false, nil
	}
	if err := unix.Mkdirat(unix.AT_FDCWD, p, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("creating %s: %w", p, err)
	}
	if st, ok := parent.Sys().(*unix.Stat_t); ok {
		// Lchown: never follow a link swapped in since the mkdir.
		_ = os.Lchown(p, int(st.Uid), int(st.Gid))
	}
	fi, err = os.Lstat(p)
	return err == nil && fi.IsDir(), nil
}

// linkInside resolves the symlink p and reports its target when that lies
// in the workspace (where the sandbox could write it).
func linkInside(p, ws string) (string, bool) {
	t, err := filepath.EvalSymlinks(p)
	if err != nil || !under(t, []string{ws}) {
		return "", false
	}
	return t, true
}

// findRepos walks the workspace breadth-first, never following symlinks,
// and returns every real .git directory it finds within the bounds.
func findRepos(ws string) []string {
	var repos []string
	type ent struct {
		path  string
		depth int
	}
	queue := []ent{{ws, 0}}
	dirs := 0
	for len(queue) > 0 && dirs < repoWalkDirs {
		cur := queue[0]
		queue = queue[1:]
		dirs++
		ents, err := os.ReadDir(cur.path)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() { // DirEntry types come from lstat: links are not dirs
				continue
			}
			name := e.Name()
			p := filepath.Join(cur.path, name)
			if name == ".git" {
				repos = append(repos, p)
				continue
			}
			if skipWalk[name] || cur.depth+1 > repoWalkDepth {
				continue
			}
			queue = append(queue, ent{p, cur.depth + 1})
		}
	}
	return repos
}
