package dataset

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// SchemaVersion is the version of the dataset layout this package reads and
// writes; readers refuse newer manifests.
const SchemaVersion = 1

// Record kinds as written in the kind column.
const (
	KindTop      = "top"
	KindRandom   = "random"
	KindQuantile = "quantile"
)

// MaxQuantileBuckets bounds the quantile buckets of a dataset (and of a
// collation job), so readers can trust bucket numbers.
const MaxQuantileBuckets = 100

// Parquet key-value metadata keys of both layer files.
const (
	MetaSchemaVersion  = "tdb.schema_version"
	MetaLocation       = "tdb.location"
	MetaLayer          = "tdb.layer"
	MetaComponents     = "tdb.components"
	MetaPerRowGroup    = "tdb.components_per_row_group"
	MetaPairs          = "tdb.pairs"
	MetaHistogramEdges = "tdb.histogram_edges"
	// MetaActivations is "sparse" in a records.parquet of the sparse
	// layout (SparseRecordsSchema); absent in the dense one.
	MetaActivations = "tdb.activations"
)

// Column names of the layer files. ColComponent is the first column of
// both and carries min/max statistics per row group.
const (
	ColComponent     = "component"
	ColKind          = "kind"
	ColRank          = "rank"
	ColBucket        = "bucket"
	ColMaxActivation = "max_activation"
	ColDoc           = "doc"
	ColOffset        = "offset"
	ColTokens        = "tokens"
	ColActivations   = "activations"
	// The sparse layout's columns in place of activations: the positions
	// (indexes into the dense activations) of the values that are not +0,
	// ascending, and those values.
	ColActivationPositions = "activation_positions"
	ColActivationValues    = "activation_values"

	ColCount              = "count"
	ColMean               = "mean"
	ColVariance           = "variance"
	ColSkewness           = "skewness"
	ColKurtosis           = "kurtosis"
	ColMax                = "max"
	ColMin                = "min"
	ColFracNonzero        = "frac_nonzero"
	ColQuantileBoundaries = "quantile_boundaries"
	ColHistogram          = "histogram"
)

// recordFields are the columns every records.parquet layout starts with.
var recordFields = []arrow.Field{
	{Name: ColComponent, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColKind, Type: arrow.BinaryTypes.String},
	{Name: ColRank, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColBucket, Type: arrow.PrimitiveTypes.Int8},
	{Name: ColMaxActivation, Type: arrow.PrimitiveTypes.Float32},
	{Name: ColDoc, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColTokens, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int32)},
}

var recordsSchema = arrow.NewSchema(append(slices.Clip(recordFields),
	arrow.Field{Name: ColActivations, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
), nil)

// sparseRecordsSchema is recordsSchema with the activations as positions
// and values, for layers whose records are mostly zero (autoencoder
// latents).
var sparseRecordsSchema = arrow.NewSchema(append(slices.Clip(recordFields),
	arrow.Field{Name: ColActivationPositions, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int32)},
	arrow.Field{Name: ColActivationValues, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
), nil)

var statsSchema = arrow.NewSchema([]arrow.Field{
	{Name: ColComponent, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColCount, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColMean, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColVariance, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColSkewness, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColKurtosis, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColMax, Type: arrow.PrimitiveTypes.Float32},
	{Name: ColMin, Type: arrow.PrimitiveTypes.Float32},
	{Name: ColFracNonzero, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColQuantileBoundaries, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
	{Name: ColHistogram, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64)},
}, nil)

// RecordsSchema is the Arrow schema of records.parquet (shared; do not
// modify).
func RecordsSchema() *arrow.Schema { return recordsSchema }

// SparseRecordsSchema is the Arrow schema of a records.parquet in the
// sparse layout (shared; do not modify). Readers tell the layouts apart by
// the activation_positions column; the activations of a per-token record
// are as many as its tokens.
func SparseRecordsSchema() *arrow.Schema { return sparseRecordsSchema }

// SparseActivations returns the positions and values of acts that are not
// +0 (a -0 is kept as a value, so DenseActivations gives back the same
// bits).
func SparseActivations(acts []float32) (pos []int32, vals []float32) {
	for i, v := range acts {
		if math.Float32bits(v) != 0 {
			pos = append(pos, int32(i))
			vals = append(vals, v)
		}
	}
	return pos, vals
}

// DenseActivations expands a sparse record of n activations.
func DenseActivations(pos []int32, vals []float32, n int) ([]float32, error) {
	if len(pos) != len(vals) {
		return nil, fmt.Errorf("%d activation positions for %d values", len(pos), len(vals))
	}
	out := make([]float32, n)
	prev := int32(-1)
	for i, p := range pos {
		if p <= prev || int(p) >= n {
			return nil, fmt.Errorf("activation position %d out of order or beyond %d activations", p, n)
		}
		out[p] = vals[i]
		prev = p
	}
	return out, nil
}

// StatsSchema is the Arrow schema of stats.parquet (shared; do not modify).
func StatsSchema() *arrow.Schema { return statsSchema }

// ErrBadName is wrapped by errors about dataset or location names that are
// not valid (a caller's mistake, not a missing dataset).
var ErrBadName = errors.New("bad name")

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$`)

// CheckName rejects dataset and location names that would escape their
// folder on the store or be ambiguous; what ("dataset", "location") names the
// kind in the error, which wraps ErrBadName.
func CheckName(what, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("dataset: %w: %s %q (letters, digits, '.', '_', '-', '=' only, at most 128)", ErrBadName, what, name)
	}
	return nil
}

// ManifestKey is the store key of a dataset's manifest.
func ManifestKey(dataset string) string { return "datasets/" + dataset + "/manifest.json" }

// LayerPrefix is the store folder of one location and layer of a dataset.
func LayerPrefix(dataset, location string, layer int) string {
	return fmt.Sprintf("datasets/%s/%s/layer=%d/", dataset, location, layer)
}

// RecordsKey is the store key of a layer's records.
func RecordsKey(dataset, location string, layer int) string {
	return LayerPrefix(dataset, location, layer) + "records.parquet"
}

// StatsKey is the store key of a layer's per-component statistics.
func StatsKey(dataset, location string, layer int) string {
	return LayerPrefix(dataset, location, layer) + "stats.parquet"
}
