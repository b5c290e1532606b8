package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"
)

// C2SP tlog-tiles layout: tiles are 2^8 = 256 hashes (or entries) wide.
const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	// maxEntry is the largest entry a bundle can hold (uint16 length prefix).
	maxEntry = 1<<16 - 1
)

// encodeIndex writes N as C2SP path elements: zero-padded groups of three
// digits, all but the last prefixed with "x" (1234067 -> x001/x234/067).
func encodeIndex(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func withWidth(base string, w int) string {
	if w == tileWidth {
		return base
	}
	return base + ".p/" + strconv.Itoa(w)
}

// hashTilePath is tile/<L>/<N>[.p/<W>].
func hashTilePath(level int, n int64, w int) string {
	return withWidth("tile/"+strconv.Itoa(level)+"/"+encodeIndex(n), w)
}

// bundlePath is tile/entries/<N>[.p/<W>].
func bundlePath(n int64, w int) string {
	return withWidth("tile/entries/"+encodeIndex(n), w)
}

// tileWidthAt is how many hashes tile (level, n) holds in a tree of size.
func tileWidthAt(level int, n int64, size int64) int {
	w := (size >> (tileHeight * level)) - n*tileWidth
	if w > tileWidth {
		return tileWidth
	}
	if w < 0 {
		return 0
	}
	return int(w)
}

// appendEntry appends one length-prefixed entry to a bundle.
func appendEntry(bundle, entry []byte) []byte {
	bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(entry)))
	return append(bundle, entry...)
}

// ParseBundle splits a C2SP entry bundle into its entries. Every byte must
// belong to a complete entry; the entries alias data.
func ParseBundle(data []byte) ([][]byte, error) {
	entries, used := parseBundlePrefix(data)
	if used != len(data) {
		return entries, &ParseError{What: "entry bundle", Offset: used, Reason: "truncated entry"}
	}
	if len(entries) > tileWidth {
		return entries, &ParseError{What: "entry bundle", Offset: -1, Reason: fmt.Sprintf("%d entries, at most %d allowed", len(entries), tileWidth)}
	}
	return entries, nil
}

// parseBundlePrefix returns the complete entries at the start of data and
// how many bytes they use; anything after is a torn write.
func parseBundlePrefix(data []byte) (entries [][]byte, used int) {
	for used+2 <= len(data) {
		n := int(binary.BigEndian.Uint16(data[used:]))
		if used+2+n > len(data) {
			break
		}
		entries = append(entries, data[used+2:used+2+n])
		used += 2 + n
	}
	return entries, used
}

// diskHashes reads stored hashes from the hash tiles of a tree of the given
// size, with an in-memory overlay for hashes being added. Tiles are only
// read on the right edge of the tree, so an append touches O(log n) files.
type diskHashes struct {
	root    string
	size    int64
	cache   map[tlog.Tile][]byte // keyed by tile, so a hit builds no path
	overlay map[int64]tlog.Hash
}

func newDiskHashes(root string, size int64) *diskHashes {
	return &diskHashes{root: root, size: size, cache: map[tlog.Tile][]byte{}, overlay: map[int64]tlog.Hash{}}
}

func (d *diskHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if h, ok := d.overlay[idx]; ok {
			out[i] = h
			continue
		}
		t := tlog.TileForIndex(tileHeight, idx)
		t.W = tileWidthAt(t.L, t.N, d.size)
		if t.W == 0 {
			return nil, fmt.Errorf("hash %d is beyond tree size %d", idx, d.size)
		}
		data, ok := d.cache[t]
		if !ok {
			var err error
			if data, _, err = readHashTile(d.root, t.L, t.N, t.W); err != nil {
				return nil, err
			}
			d.cache[t] = data
		}
		h, err := tlog.HashFromTile(t, data, idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// readHashTile reads the W hashes of tile (level, n) that a checkpoint
// covers, and the file they came from, relative to the log directory's
// root. An append grows a partial tile in place, by one hash, and then
// renames it to its new width, so an append that died on the way leaves
// one of: the tile under its old name with up to one hash more, or under
// the next width's name (.p/W+1, or the full name). Those extra bytes are
// past the checkpoint, like a pending record, and are ignored here and
// overwritten by the next append.
func readHashTile(root string, level int, n int64, w int) (data []byte, rel string, err error) {
	want := w * tlog.HashSize
	rel = hashTilePath(level, n, w)
	data, err = os.ReadFile(filepath.Join(root, rel))
	if isNotExist(err) && w < tileWidth {
		next := hashTilePath(level, n, w+1)
		if d, nerr := os.ReadFile(filepath.Join(root, next)); nerr == nil {
			data, rel, err = d, next, nil
		}
	}
	if err != nil {
		return nil, rel, fmt.Errorf("reading hash tile: %w", err)
	}
	if len(data) < want || (len(data) > want && w == tileWidth) || len(data) > want+tlog.HashSize {
		return nil, rel, &VerifyError{Seq: -1, File: rel, Reason: fmt.Sprintf("tile is %d bytes, want %d", len(data), want), Err: ErrTampered}
	}
	return data[:want:want], rel, nil
}

// memHashes is a HashReader over every stored hash, held in memory.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if idx < 0 || idx >= int64(len(m)) {
			return nil, fmt.Errorf("hash %d out of range", idx)
		}
		out[i] = m[idx]
	}
	return out, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
