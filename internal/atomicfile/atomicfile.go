// Package atomicfile replaces files so that a reader sees the old file or
// the whole new one, never a part: the DirCache of the root package, the
// simulator's state file and the command's certificate, key and bill
// files all write through it.
package atomicfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// Write gives write a temporary file next to path, with mode perm from
// the start, and renames it over path only if write, the sync and the
// close succeed; otherwise it removes it and path is left as it was.
// Temporary files start with a dot.
func Write(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// Set the mode before any byte is written: a secret never sits in a
	// file more readable than asked.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFile is Write of data.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	})
}
