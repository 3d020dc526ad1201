package debugger

import (
	"fmt"
	"regexp"
	"strconv"
)

// NodeType names the kinds of node a user investigates (§2).
type NodeType string

const (
	Embedding   NodeType = "embedding"
	MLPNeuron   NodeType = "mlp_neuron"
	AttnHead    NodeType = "attention_head"
	MLPLatent   NodeType = "mlp_autoencoder_latent"
	AttnLatent  NodeType = "attention_autoencoder_latent"
	allPosition          = -1
)

// Node identifies one node. Token is the (query) token; KeyToken is the key
// token of an attention head node. Token -1 in an ablation means every token.
type Node struct {
	Type     NodeType `json:"type"`
	Layer    int      `json:"layer"`
	Index    int      `json:"index"`
	Token    int      `json:"token"`
	KeyToken int      `json:"key_token,omitempty"`
}

// Name is the display name: mlp_L5_123@7, attn_L3_7@7>2, emb@4, mlp_ae_L2_9@7.
func (n Node) Name() string {
	at := ""
	if n.Token >= 0 {
		at = "@" + strconv.Itoa(n.Token)
	}
	switch n.Type {
	case Embedding:
		return "emb" + at
	case MLPNeuron:
		return fmt.Sprintf("mlp_L%d_%d%s", n.Layer, n.Index, at)
	case AttnHead:
		if n.Token >= 0 && n.KeyToken >= 0 {
			at += ">" + strconv.Itoa(n.KeyToken)
		}
		return fmt.Sprintf("attn_L%d_%d%s", n.Layer, n.Index, at)
	case MLPLatent:
		return fmt.Sprintf("mlp_ae_L%d_%d%s", n.Layer, n.Index, at)
	case AttnLatent:
		return fmt.Sprintf("attn_ae_L%d_%d%s", n.Layer, n.Index, at)
	}
	return string(n.Type)
}

var nodeRE = regexp.MustCompile(`^(mlp|attn|mlp_ae|attn_ae)_L(\d+)_(\d+)(?:@(\d+)(?:>(\d+))?)?$`)

// ParseNode reads a display name. The token part is optional (every token).
func ParseNode(s string) (Node, error) {
	m := nodeRE.FindStringSubmatch(s)
	if m == nil {
		return Node{}, fmt.Errorf("bad node %q: want mlp_L<layer>_<neuron>[@<token>], attn_L<layer>_<head>[@<query>[><key>]], mlp_ae_L<layer>_<latent>[@<token>] or attn_ae_L<layer>_<latent>[@<token>]", s)
	}
	n := Node{Token: allPosition, KeyToken: allPosition}
	n.Type = map[string]NodeType{"mlp": MLPNeuron, "attn": AttnHead, "mlp_ae": MLPLatent, "attn_ae": AttnLatent}[m[1]]
	n.Layer, _ = strconv.Atoi(m[2])
	n.Index, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		n.Token, _ = strconv.Atoi(m[4])
	}
	if m[5] != "" {
		if n.Type != AttnHead {
			return Node{}, fmt.Errorf("bad node %q: only attention heads have a key token", s)
		}
		n.KeyToken, _ = strconv.Atoi(m[5])
	}
	return n, nil
}
