// Package bert runs bring-your-own BERT models for NLU: a folder with an
// ONNX export of a fine-tuned BERT (model.yaml of kind nlu-bert,
// vocab.txt, labels.txt) becomes an intent classifier (Classify, task
// sequence) or an entity tagger (Tag, task token, BIO labels).
//
// WordPiece is the BERT tokenizer (basic tokenization plus greedy
// longest-match-first WordPiece), written to match Hugging Face's
// BertTokenizer for Chinese and uncased English text, with rune offsets
// into the input for every token.
//
// It runs models only through package inference; it does not train, does
// not batch several texts into one run (inference's micro-batching does
// that when enabled), keeps no package-level state and logs nothing.
package bert
