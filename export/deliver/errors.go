package deliver

import "errors"

var (
	// ErrChecksum: a copy's content is not the file's recorded SHA-256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrHostKey: the SFTP server's host key is unknown to known_hosts or
	// differs from the one recorded there. Never bypassed.
	ErrHostKey = errors.New("host key not trusted")
	// ErrArchived: the archive already holds a different file under the same
	// run, site and name.
	ErrArchived = errors.New("already archived with different content")
)
