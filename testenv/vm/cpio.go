package vm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// cpioWriter writes a cpio archive in the "newc" format the kernel unpacks
// into its initramfs (Documentation/driver-api/early-userspace/
// buffer-format.rst). Entries have uid/gid 0 and mtime 0, so archives are
// reproducible. Parent directories are created automatically (mode 0755)
// and each path is written once; a second entry for a path is an error,
// which catches two files claiming the same place in the image.
type cpioWriter struct {
	w     io.Writer
	ino   uint32
	seen  map[string]string // guest path -> what created it, for errors
	n     int64             // bytes written, for padding
	err   error
	files int
}

// newCPIOWriter returns a writer appending to w. Close writes the trailer.
func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, seen: map[string]string{"/": "root"}}
}

// File mode bits of cpio headers (the st_mode type field).
const (
	cpioDir     = 0o040000
	cpioRegular = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

// cleanGuestPath makes p absolute and clean; "/" is rejected as an entry.
func cleanGuestPath(p string) (string, error) {
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("cpio: empty path %q", p)
	}
	return c, nil
}

// Dir adds a directory (and its parents).
func (c *cpioWriter) Dir(p string, perm os.FileMode) error {
	p, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	if what, ok := c.seen[p]; ok {
		if what == "dir" {
			return nil // directories may be asked for many times
		}
		return fmt.Errorf("cpio: directory %s is already a %s", p, what)
	}
	if err := c.parents(p); err != nil {
		return err
	}
	c.seen[p] = "dir"
	return c.header(p, cpioDir|uint32(perm.Perm()), 2, 0, 0, 0)
}

// parents adds the missing parent directories of p, failing if one of
// them is already something else than a directory.
func (c *cpioWriter) parents(p string) error {
	dir := path.Dir(p)
	what, ok := c.seen[dir]
	switch {
	case dir == "/" || what == "dir":
		return nil
	case ok:
		return fmt.Errorf("cpio: %s: parent %s is a %s", p, dir, what)
	}
	return c.Dir(dir, 0o755)
}

// claim records that p is written by what, failing if it already is.
func (c *cpioWriter) claim(p, what string) error {
	if prev, ok := c.seen[p]; ok {
		return fmt.Errorf("cpio: %s added twice (%s, then %s)", p, prev, what)
	}
	if err := c.parents(p); err != nil {
		return err
	}
	c.seen[p] = what
	return nil
}

// Has reports whether p was already added.
func (c *cpioWriter) Has(p string) bool {
	p, err := cleanGuestPath(p)
	if err != nil {
		return false
	}
	_, ok := c.seen[p]
	return ok
}

// Bytes adds a regular file with the given content.
func (c *cpioWriter) Bytes(p string, perm os.FileMode, data []byte) error {
	return c.Reader(p, perm, bytes.NewReader(data), int64(len(data)), "generated file")
}

// Reader adds a regular file of exactly size bytes read from r.
func (c *cpioWriter) Reader(p string, perm os.FileMode, r io.Reader, size int64, what string) error {
	p, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	if size > 0xffffffff {
		return fmt.Errorf("cpio: %s: %d bytes is too large for newc", p, size)
	}
	if err := c.claim(p, what); err != nil {
		return err
	}
	if err := c.header(p, cpioRegular|uint32(perm.Perm()), 1, uint32(size), 0, 0); err != nil {
		return err
	}
	n, err := io.Copy(c, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("cpio: %s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("cpio: %s: got %d bytes, want %d (file changed while copying?)", p, n, size)
	}
	c.files++
	return c.pad()
}

// HostFile adds the host file src (following symlinks) as p, keeping its
// permission bits.
func (c *cpioWriter) HostFile(p, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("cpio: %s is not a regular file", src)
	}
	return c.Reader(p, st.Mode().Perm(), f, st.Size(), src)
}

// Symlink adds a symbolic link p -> target.
func (c *cpioWriter) Symlink(p, target string) error {
	p, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	if err := c.claim(p, "symlink to "+target); err != nil {
		return err
	}
	if err := c.header(p, cpioSymlink|0o777, 1, uint32(len(target)), 0, 0); err != nil {
		return err
	}
	if _, err := io.WriteString(c, target); err != nil {
		return err
	}
	return c.pad()
}

// CharDev adds a character device node (e.g. /dev/console, which the
// kernel opens for init before devtmpfs is mounted).
func (c *cpioWriter) CharDev(p string, perm os.FileMode, major, minor uint32) error {
	p, err := cleanGuestPath(p)
	if err != nil {
		return err
	}
	if err := c.claim(p, "device"); err != nil {
		return err
	}
	return c.header(p, cpioCharDev|uint32(perm.Perm()), 1, 0, major, minor)
}

// Close writes the trailer entry. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	if err := c.header("TRAILER!!!", 0, 1, 0, 0, 0); err != nil {
		return err
	}
	return c.err
}

// Write implements io.Writer for file data, counting bytes for padding.
func (c *cpioWriter) Write(b []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
	return n, err
}

// header writes a newc header and the NUL-terminated, padded name. Names
// are stored relative ("bin/sh"), as the kernel's own gen_init_cpio does.
func (c *cpioWriter) header(p string, mode, nlink, size, rmajor, rminor uint32) error {
	name := strings.TrimPrefix(p, "/")
	ino := c.ino
	c.ino++
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := io.WriteString(c, h+name+"\x00"); err != nil {
		return fmt.Errorf("cpio: write %s: %w", p, err)
	}
	return c.pad()
}

// pad writes NULs up to the next multiple of 4 bytes.
func (c *cpioWriter) pad() error {
	if r := c.n % 4; r != 0 {
		if _, err := c.Write(make([]byte, 4-r)); err != nil {
			return err
		}
	}
	return c.err
}
