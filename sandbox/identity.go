package sandbox

import (
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// The uid mapping (docs/sandbox.md, "Identity").
//
// A root caller's container gets a user namespace whose ids 0..65535 map to
// the host range hostBase..hostBase+65535, which no host account uses. The
// command runs as sandboxUID inside, so on the host it is hostBase+1000: it
// owns nothing, and root-only files (/etc/shadow, SSH host keys, /root)
// show up as the overflow id and stay unreadable. The writable mounts
// (workspace, Writable, caches) and HOME are idmapped so that, through them
// only, the caller's uid and sandboxUID trade places: what the sandbox user
// creates there lands on disk as the caller, and the caller's files look like
// the sandbox user's own.
//
// A non-root caller cannot map more than its own id without setuid helpers,
// so its container maps inside uid 0 to the caller's uid and nothing else.
// That uid 0 has no capabilities (all dropped, no_new_privs, its user
// namespace owns nothing on the host), and writes land as the caller because
// the caller is the only id there is.
const (
	hostBase   = 0x70000000 // 1879048192
	idRange    = 65536
	sandboxUID = 1000
	sandboxGID = 1000
)

type identity struct {
	rootless       bool
	inUID, inGID   int
	uidMap, gidMap []configs.IDMap
	// mntUID, mntGID are the idmapped-mount mappings (nil when rootless).
	mntUID, mntGID []configs.IDMap
}

func currentIdentity() identity {
	uid, gid := os.Geteuid(), os.Getegid()
	if uid != 0 {
		return identity{
			rootless: true,
			uidMap:   []configs.IDMap{{ContainerID: 0, HostID: int64(uid), Size: 1}},
			gidMap:   []configs.IDMap{{ContainerID: 0, HostID: int64(gid), Size: 1}},
		}
	}
	return identity{
		inUID:  sandboxUID,
		inGID:  sandboxGID,
		uidMap: []configs.IDMap{{ContainerID: 0, HostID: hostBase, Size: idRange}},
		gidMap: []configs.IDMap{{ContainerID: 0, HostID: hostBase, Size: idRange}},
		mntUID: swapMap(0, sandboxUID),
		mntGID: swapMap(gid, sandboxGID),
	}
}

// swapMap is the idmapped-mount mapping for a root caller: on-disk id
// caller shows as inside id in, on-disk id in shows as caller, and every
// other on-disk id below idRange keeps its number. Entries are
// {on-disk id, host kuid, count}; the kuid is hostBase plus the inside id.
func swapMap(caller, in int) []configs.IDMap {
	if caller == in || caller >= idRange {
		return []configs.IDMap{{ContainerID: 0, HostID: hostBase, Size: idRange}}
	}
	type seg struct{ from, to, n int }
	var segs []seg
	lo, hi := min(caller, in), max(caller, in)
	segs = append(segs,
		seg{0, 0, lo},
		seg{lo, hi, 1},
		seg{lo + 1, lo + 1, hi - lo - 1},
		seg{hi, lo, 1},
		seg{hi + 1, hi + 1, idRange - hi - 1},
	)
	var m []configs.IDMap
	for _, s := range segs {
		if s.n > 0 {
			m = append(m, configs.IDMap{ContainerID: int64(s.from), HostID: int64(hostBase + s.to), Size: int64(s.n)})
		}
	}
	return m
}
