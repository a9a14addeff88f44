// Package asrtest generates contract models of the ASR releases zhiyin
// supports: SenseVoice-small (sherpa-onnx and FunASR layouts) and offline
// Paraformer (sherpa-onnx with and without CIF timestamps, and FunASR).
//
// Each folder has the file names, ONNX tensor names, element types, dynamic
// axes, metadata_props and companion files (tokens.txt, tokens.json, am.mvn,
// config.yaml) of the real release, so that `zhiyin models install`
// identifies it from models/catalog.yaml and the recognizers can be tested
// end to end in CI, where no real weights exist. The weights are small and
// pseudo-random from fixed seeds (the output is reproducible byte for byte;
// scripts/gen-test-models writes it to models/testdata/asr and a test checks
// the committed copies), and the graphs behave in documented ways so that
// decoding is testable:
//
// SenseVoice (logits [N,T+4,25055]; raw logits in the sherpa-onnx file,
// log-softmax in the FunASR one, as each exporter writes them):
//   - frame 0 is the language tag chosen by the language input (0 auto and
//     3 zh → <|zh|>, 4 → <|en|>, 7 → <|yue|>, 11 → <|ja|>, 12 → <|ko|>,
//     13 → <|nospeech|>, any other value → <|zh|>), frame 1 <|NEUTRAL|>,
//     frame 2 <|Speech|>, frame 3 <|withitn|> when text_norm is 14 and
//     <|woitn|> otherwise;
//   - frame 4+t (t < x_length) is a low-rank projection of x[t] whose argmax
//     is blank (0) or one of the text ids (SenseVoiceTextIDs), never
//     PadMarker; a frame whose features are all equal (0 included), or equal
//     to the CMVN of log-floor silence, is blank;
//   - frame 4+t for t ≥ x_length (batch padding) is PadMarker, so that a
//     decoder that ignores the lengths shows it;
//   - the FunASR file's encoder_out_lens is speech_lengths+4.
//
// Paraformer (logits [N,U,8404] log-softmax, U = T, token_num int32):
//   - token_num = min(speech_lengths/4 + 1, T) (integer division);
//   - row r < token_num−1 is a projection of speech[r] whose argmax is a
//     text id (ParaformerTextIDs, never 0, 1, 2, 8403 or PadMarker);
//   - row token_num−1 is </s> (2), where FunASR's predictor_bias 1 drops it
//     and sherpa-onnx stops, so both rules give the same token_num−1 tokens;
//   - rows ≥ token_num are PadMarker: garbage a decoder must not emit;
//   - with timestamps, us_alphas[k] = 1/3 and us_cif_peak[k] =
//     ((k mod 3)+1)/3 for k < 3·token_num, both 0 after: the peaks
//     (> 1−1e-4) are at k = 3r+2 for r < token_num, token_num of them, and
//     dropping the last leaves one per token (time (3r+2)·0.02 s).
//
// It does no I/O except Write; it must not be used by production code, and
// its models must never be mistaken for real ones (their metadata says
// maintainer=zhiyin-contract-model).
package asrtest
