package session

import "errors"

// Sentinels of the session store and the keyring. Match them with
// errors.Is; the returned errors wrap them with the id concerned.
var (
	// ErrNotFound is returned by Get, Latest, LatestExpired and Handoff
	// when there is no such row, by ExpireTx and PutHandoffTx for an
	// unknown session, and by SaveTx when a session with Version > 0 no
	// longer exists (a data-subject deletion or retention removed it).
	ErrNotFound = errors.New("session not found")

	// ErrConflict is returned by SaveTx when the stored version differs
	// from Session.Version (another writer saved the session since it was
	// read), or when a session with Version 0 already exists. Reload the
	// session and redo the turn.
	ErrConflict = errors.New("session was changed by another writer: reload it and retry")

	// ErrUnknownKey is returned by Keyring.Open (and so by every read of
	// a sealed column) when the key id of a row is not in the key file,
	// even after re-reading it: the key was retired while rows still use
	// it, or the key file is not the one the database was written with.
	ErrUnknownKey = errors.New("session encryption key not in the key file: restore the key file that wrote this database")

	// ErrDecrypt is returned by Keyring.Open when a sealed value fails
	// authentication: it was altered, moved to another row, or sealed
	// with a different key under the same id.
	ErrDecrypt = errors.New("sealed session data failed authentication: the database or the key file was altered")
)
