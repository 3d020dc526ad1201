// Package dataset is the on-store format of a collated activation dataset
// and its read contract: the store keys, the manifest, the record and
// statistics types, the Parquet schemas and the readers. Writers (collate)
// and readers (tdb top, the query service, the viewer) share it, so a reader
// never imports the accumulators that produce the files.
//
// It imports only tdb/store and Apache Arrow's Parquet packages.
//
// # Layout
//
//	datasets/<name>/manifest.json                       Manifest, written last
//	datasets/<name>/<location>/layer=<L>/records.parquet  one row per record
//	datasets/<name>/<location>/layer=<L>/stats.parquet    one row per component
//
// A dataset without a manifest does not exist for readers. records.parquet
// holds the columns of RecordsSchema (component, kind "top"/"random"/
// "quantile", rank, bucket (-1 unless quantile), max_activation, doc, offset,
// tokens, activations; or, in the sparse layout of layers that are mostly
// zero, SparseRecordsSchema's activation_positions and activation_values,
// which the reader detects by column and expands, so a ComponentView looks
// the same) sorted by component, kind, rank, in row groups of
// whole components with min/max statistics on component (and, since
// page-indexed reads, small data pages aligned on records with an offset
// index); stats.parquet holds
// StatsSchema (count, mean, variance, skewness, kurtosis, max, min,
// frac_nonzero, quantile_boundaries, histogram). The histogram's bin edges are
// HistogramEdges (also in the file metadata, MetaHistogramEdges).
//
// # Reading
//
// Start at ReadManifest, then ReadComponentFrom (or ReadComponent, which
// reads the manifest itself): it opens the layer's two files with ranged
// reads, prefetches the footer and reads only the row group that holds the
// component; in a records.parquet with a page index (small data pages
// aligned on records, as collate writes them) only the pages that hold the
// component's rows (File.ReadComponentRecords), since decoding the token
// and activation lists of a whole row group was most of a first read's
// time. Files without one are read a row group at a time. Errors wrap store.ErrNotFound for missing datasets, locations,
// layers and components and ErrBadName for names that are not valid, so
// services can map them to HTTP status codes with errors.Is.
package dataset
