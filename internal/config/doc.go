// Package config decodes zhiyin's YAML configuration strictly and validates it
// with field paths and line numbers.
//
// It is plumbing only: it knows nothing of the sections themselves. Each
// component owns the typed struct of its section and its Validate method; the
// root struct that composes them lives in cmd/zhiyin.
//
// Decoding rules:
//   - an unknown key is an error naming the file, the line and the full path;
//   - a [Secret] field named x may instead be given as x_file (the file's
//     contents, trailing newline trimmed) or as "${ENV_NAME}" (from the
//     environment, e.g. systemd EnvironmentFile=);
//   - after decoding, every struct that implements [Validatable] is validated
//     and each error is reported as "FILE:LINE: path.to.field: message".
//
// The package holds no global state.
package config
