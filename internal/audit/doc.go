// Package audit keeps zhiyin's audit trail: who (an API key, a JWT
// subject, a CLI user, loopback, the system itself) did which
// administrative act (export or erase a customer's data, apply retention,
// add or retire encryption keys, create or revoke API keys) to what, and
// when. Entries live in the zhiyin database under the migration component
// "audit"; the caller records them, in the same transaction as the act
// when it can (RecordTx).
//
// # What it must not do
//
// An entry never holds message text: no customer or reply text, no slot
// values, no secrets — only ids, key ids, counts and names. Fields are
// bounded (MaxFieldLen, MaxDetail) so that a message pasted in by mistake
// is refused rather than kept. The package keeps no state of its own and
// does not log.
package audit
