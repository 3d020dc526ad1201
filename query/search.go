package query

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"tdb/dataset"
	"tdb/store"
)

// Hit is one component found by a search, with its best evidence.
type Hit struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
	// Score is the largest max activation among the matching top records.
	Score float32 `json:"score"`
	// Matches is how many of the component's top records match.
	Matches  int      `json:"matches"`
	Evidence Evidence `json:"evidence"`
}

// Evidence is the best matching record: its rank among the top records and
// the token position of the match (for token search, the position of the
// maximum activation).
type Evidence struct {
	Rank          int            `json:"rank"`
	Position      int            `json:"position"`
	MaxActivation float32        `json:"max_activation"`
	Source        dataset.Source `json:"source"`
	Tokens        []int32        `json:"tokens"`
	TokenStrings  []string       `json:"token_strings"`
}

// SearchResult is the answer of a search.
type SearchResult struct {
	Token *int   `json:"token,omitempty"`
	Text  string `json:"text,omitempty"`
	// Layers is how many layers were searched.
	Layers int   `json:"layers"`
	Hits   []Hit `json:"hits"`
}

// layerIndex returns a layer's index rows: token-filtered from
// index.parquet when it exists, else (older datasets) built from the
// records and kept in the LRU.
func (r *Reader) layerIndex(ctx context.Context, m *dataset.Manifest, location string, layer, token int) ([]dataset.IndexRow, error) {
	key := dataset.IndexKey(m.Name, location, layer)
	if token >= 0 {
		v, err := r.cache.get(ctx, "idx|"+key+"|"+strconv.Itoa(token), func(lctx context.Context) (any, int64, error) {
			rows, err := dataset.ReadIndex(lctx, r.st, key, token)
			return rows, indexSize(rows), err
		})
		if err == nil {
			return v.([]dataset.IndexRow), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	v, err := r.cache.get(ctx, "idxall|"+key, func(lctx context.Context) (any, int64, error) {
		rows, err := dataset.ReadIndex(lctx, r.st, key, -1)
		if errors.Is(err, store.ErrNotFound) {
			rows, err = r.buildIndex(lctx, m, location, layer)
		}
		return rows, indexSize(rows), err
	})
	if err != nil {
		return nil, err
	}
	rows := v.([]dataset.IndexRow)
	if token >= 0 {
		lo, _ := slices.BinarySearchFunc(rows, int32(token), func(r dataset.IndexRow, t int32) int { return int(r.Token) - int(t) })
		hi := lo
		for hi < len(rows) && rows[hi].Token == int32(token) {
			hi++
		}
		return rows[lo:hi], nil
	}
	return rows, nil
}

func indexSize(rows []dataset.IndexRow) int64 {
	n := int64(64)
	for _, r := range rows {
		n += 64 + 4*int64(len(r.Tokens))
	}
	return n
}

// buildIndex derives a layer's index from its records (sorted by token as
// index.parquet is).
func (r *Reader) buildIndex(ctx context.Context, m *dataset.Manifest, location string, layer int) ([]dataset.IndexRow, error) {
	loc, _ := m.Location(location)
	f, err := r.file(ctx, dataset.RecordsKey(m.Name, location, layer))
	if err != nil {
		return nil, err
	}
	return dataset.IndexRowsOfFile(ctx, r.st, f, loc.Pairs)
}

// SearchOptions narrow a search.
type SearchOptions struct {
	Token    int    // token id, or -1
	Text     string // substring of a top record's text, or ""
	Location string // "" for every location
	Layer    int    // -1 for every layer
	Limit    int
}

// Search ranks components by how strongly their top records fire on a
// token (at the maximum-activation position) or contain a text.
func (r *Reader) Search(ctx context.Context, name string, o SearchOptions) (*SearchResult, error) {
	m, err := r.Manifest(ctx, name)
	if err != nil {
		return nil, err
	}
	if o.Location != "" {
		if err := checkLayer(m, o.Location, max(o.Layer, 0)); err != nil && o.Layer >= 0 {
			return nil, err
		} else if _, ok := m.Location(o.Location); !ok {
			return nil, dataset.CheckComponent(m, o.Location, 0, 0)
		}
	}
	res := &SearchResult{Hits: []Hit{}}
	if o.Token >= 0 {
		t := o.Token
		res.Token = &t
	} else {
		res.Text = o.Text
	}
	best := map[[3]int]*Hit{}
	for li, loc := range m.Locations {
		if o.Location != "" && loc.Name != o.Location {
			continue
		}
		for _, layer := range loc.Layers {
			if o.Layer >= 0 && layer != o.Layer {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			res.Layers++
			rows, err := r.layerIndex(ctx, m, loc.Name, layer, o.Token)
			if err != nil {
				return nil, err
			}
			var texts []string
			if o.Token < 0 {
				if texts, err = r.layerTexts(ctx, m, loc.Name, layer, rows); err != nil {
					return nil, err
				}
			}
			for i := range rows {
				row := &rows[i]
				pos := int(row.Position)
				if o.Token < 0 {
					if pos = r.textMatch(row.Tokens, texts[i], o.Text); pos < 0 {
						continue
					}
				}
				k := [3]int{li, layer, int(row.Component)}
				h := best[k]
				if h == nil {
					h = &Hit{Location: loc.Name, Layer: layer, Index: int(row.Component), Score: row.MaxActivation}
					best[k] = h
				}
				h.Matches++
				if h.Matches == 1 || row.MaxActivation > h.Score {
					h.Score = row.MaxActivation
					h.Evidence = Evidence{Rank: int(row.Rank), Position: pos, MaxActivation: row.MaxActivation,
						Source: row.Source, Tokens: row.Tokens}
				}
			}
		}
	}
	for _, h := range best {
		res.Hits = append(res.Hits, *h)
	}
	slices.SortFunc(res.Hits, func(a, b Hit) int {
		switch {
		case a.Score != b.Score:
			if a.Score > b.Score {
				return -1
			}
			return 1
		case a.Location != b.Location:
			return strings.Compare(a.Location, b.Location)
		case a.Layer != b.Layer:
			return a.Layer - b.Layer
		}
		return a.Index - b.Index
	})
	res.Hits = res.Hits[:min(len(res.Hits), o.Limit)]
	for i := range res.Hits {
		e := &res.Hits[i].Evidence
		e.TokenStrings = []string{}
		if r.str != nil {
			e.TokenStrings = r.str(e.Tokens)
		}
	}
	return res, nil
}

// layerTexts returns the decoded text of every index row of a layer
// (cached).
func (r *Reader) layerTexts(ctx context.Context, m *dataset.Manifest, location string, layer int, rows []dataset.IndexRow) ([]string, error) {
	v, err := r.cache.get(ctx, "text|"+dataset.IndexKey(m.Name, location, layer), func(lctx context.Context) (any, int64, error) {
		out := make([]string, len(rows))
		size := int64(64)
		for i, row := range rows {
			if r.str != nil {
				out[i] = strings.Join(r.str(row.Tokens), "")
			}
			size += 16 + int64(len(out[i]))
		}
		return out, size, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// textMatch returns the token position where text starts in joined (the
// concatenated token strings of tokens), or -1.
func (r *Reader) textMatch(tokens []int32, joined, text string) int {
	at := strings.Index(joined, text)
	if at < 0 || r.str == nil {
		return -1
	}
	for i, s := range r.str(tokens) {
		if at < len(s) {
			return i
		}
		at -= len(s)
	}
	return len(tokens) - 1
}
