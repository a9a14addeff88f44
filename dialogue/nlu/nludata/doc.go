// Package nludata reads the examples that intent and entity models are
// trained on: Rasa 3 style YAML (nlu.yml, with domain.yml declaring entities
// and intents) and JSON Lines (one {"text","intent","entities"} object per
// line, offsets in runes).
//
// Everything it reports points at a file and line: data errors are *Error
// values (or errors.Join of at most 20 of them), warnings are "file:line: ..."
// strings in Data.Warnings.
//
// It only reads and checks data. It must not train, tokenize, normalize text
// or touch models, and it does no I/O except reading the files Load is given.
package nludata
