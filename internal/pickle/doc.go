// Package pickle is a restricted unpickler for the data.pkl of torch.save
// zip files: the one parser in tdb that reads untrusted bytes from the
// network, kept apart so it can be fuzzed on its own (FuzzDecode).
//
// It understands the opcodes Python's pickle emits for protocols 2 to 5
// (named in opcodes.go) and builds plain Go values (Tuple, *List, *Dict,
// Storage, *Tensor, strings and numbers); it never runs Python. Callables
// are limited to the handful a state dict needs (OrderedDict, the tensor
// rebuild functions, typed storages): anything else is an error, not an
// opaque object. Every length read from the input is checked against the
// bytes left before anything is allocated, so a hostile file cannot make it
// allocate more than a small multiple of its own size.
//
// Start at Decode, then the opcode switch in (*unpickler).run and reduce,
// which turns torch's rebuild calls into Tensor views.
package pickle
