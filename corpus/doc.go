// Package corpus turns a corpus spec (text files, JSONL, Parquet, a
// pre-tokenized uint16 stream, or a built-in synthetic set) into windows of
// GPT-2 tokens, cut into shards that workers can read independently.
//
// # Specs
//
//	text:GLOB              one document per file (a plain path or glob means the same,
//	                       except that .jsonl, .parquet and .bin paths pick those kinds)
//	jsonl:GLOB[#field]     one document per line, the string field (default "text")
//	parquet:GLOB[#column]  one document per row, the string column (default "text")
//	tokens:GLOB            uint16 little-endian token ids (nanoGPT .bin), one stream per file
//	synthetic:ioi[?docs=N&seed=S]    IOI name-template sentences
//	synthetic:facts[?docs=N&seed=S]  "Paris, France. Ottawa, Canada." style fact lists
//
// A path with a URL scheme (azblob://...) is read through [Options.Opener],
// which maps it to a store.Store and a key (the key may hold a glob).
// Files are always taken in sorted order.
//
// # Windows
//
// Each document is tokenized with EncodeOrdinary and followed by
// <|endoftext|>. The documents of one block are concatenated and cut into
// consecutive windows of nCtx tokens; the partial window at the end of a block
// is dropped and counted in [Stats.Dropped]. A block is a run of consecutive
// documents of about [Options.BlockBytes] bytes of source, chosen from the
// corpus alone (file sizes, line offsets, Parquet row groups), so the windows
// and their sources are the same whatever the shard size or worker count.
// JSONL and Parquet blocks never span two files. A token stream has no blocks:
// window k of a file is tokens [k*nCtx, (k+1)*nCtx), and its tail shorter than
// nCtx is dropped.
//
// Every window records its source: Doc, the id of the document holding its
// first token (text: file index; JSONL: line index over all files, blank lines
// included; Parquet: row index over all files; synthetic: document index;
// tokens: file index, 0 for a single file), and Offset, the index of that
// token within the document's tokens (within the stream for token files).
//
// Text is tokenized as UTF-8; invalid bytes become U+FFFD. Tokenizing
// (tiktoken-go, about 0.5-1 M tokens/s per core) is the costly part of
// reading, so Windows tokenizes ahead on [Options.Tokenizers] goroutines while
// the callback runs; the callback itself is called on the caller's goroutine,
// in corpus order.
//
// # Shards
//
// [Corpus.Plan] groups whole blocks into shards of about tokensPerShard
// (estimated) tokens. It reads every block once to record its content hash
// (JSONL in the same streaming pass that finds line starts, without
// parsing; Parquet decoded once), and the size and modification time of
// every file. A [Shard] is plain data (JSON) naming file ranges and their
// hashes, so a worker that opens the same spec reads only its own byte or
// row ranges in [Corpus.Windows], and checks each block against its hash
// before using it: a corpus changed since planning fails with [ErrChanged]
// instead of mixing old and new content.
//
// The package imports model/tokenizer and store (the interface only) of tdb,
// and arrow-go's Parquet reader.
package corpus
