package pickle

// The opcodes of pickle protocols 2 to 5 that the unpickler understands
// (the names are those of Python's pickletools); any other byte is an error.
const (
	opProto           byte = 0x80 // PROTO: protocol version
	opFrame           byte = 0x95 // FRAME: a length hint only
	opStop            byte = '.'  // STOP
	opMark            byte = '('  // MARK
	opPop             byte = '0'  // POP
	opPopMark         byte = '1'  // POP_MARK
	opDup             byte = '2'  // DUP
	opNone            byte = 'N'  // NONE
	opNewTrue         byte = 0x88 // NEWTRUE
	opNewFalse        byte = 0x89 // NEWFALSE
	opBinInt          byte = 'J'  // BININT: int32
	opBinInt1         byte = 'K'  // BININT1: uint8
	opBinInt2         byte = 'M'  // BININT2: uint16
	opLong1           byte = 0x8a // LONG1: little-endian two's complement, 1-byte length
	opLong4           byte = 0x8b // LONG4: the same, 4-byte length
	opBinFloat        byte = 'G'  // BINFLOAT: big-endian float64
	opBinUnicode      byte = 'X'  // BINUNICODE
	opShortBinUnicode byte = 0x8c // SHORT_BINUNICODE
	opBinUnicode8     byte = 0x8d // BINUNICODE8
	opBinString       byte = 'T'  // BINSTRING
	opShortBinString  byte = 'U'  // SHORT_BINSTRING
	opBinBytes        byte = 'B'  // BINBYTES
	opShortBinBytes   byte = 'C'  // SHORT_BINBYTES
	opBinBytes8       byte = 0x8e // BINBYTES8
	opEmptyTuple      byte = ')'  // EMPTY_TUPLE
	opEmptyList       byte = ']'  // EMPTY_LIST
	opEmptyDict       byte = '}'  // EMPTY_DICT
	opTuple           byte = 't'  // TUPLE from the items since MARK
	opList            byte = 'l'  // LIST from the items since MARK
	opDict            byte = 'd'  // DICT from the items since MARK
	opTuple1          byte = 0x85 // TUPLE1
	opTuple2          byte = 0x86 // TUPLE2
	opTuple3          byte = 0x87 // TUPLE3
	opAppend          byte = 'a'  // APPEND
	opAppends         byte = 'e'  // APPENDS
	opSetItem         byte = 's'  // SETITEM
	opSetItems        byte = 'u'  // SETITEMS
	opGlobal          byte = 'c'  // GLOBAL "module\nname\n"
	opStackGlobal     byte = 0x93 // STACK_GLOBAL
	opBinPut          byte = 'q'  // BINPUT
	opLongBinPut      byte = 'r'  // LONG_BINPUT
	opMemoize         byte = 0x94 // MEMOIZE
	opBinGet          byte = 'h'  // BINGET
	opLongBinGet      byte = 'j'  // LONG_BINGET
	opBinPersID       byte = 'Q'  // BINPERSID
	opReduce          byte = 'R'  // REDUCE
	opBuild           byte = 'b'  // BUILD
)

// argWidth is the width in bytes of the integer argument that follows each
// opcode that has one: the value itself (BININT*, the memo index of
// BINPUT/BINGET and their LONG_ forms) or the length of the bytes that
// follow it (LONG*, BINUNICODE*, BINSTRING*, BINBYTES*).
var argWidth = map[byte]int{
	opBinInt: 4, opBinInt1: 1, opBinInt2: 2,
	opLong1: 1, opLong4: 4,
	opBinUnicode: 4, opShortBinUnicode: 1, opBinUnicode8: 8,
	opBinString: 4, opShortBinString: 1, opBinBytes: 4, opShortBinBytes: 1, opBinBytes8: 8,
	opBinPut: 1, opLongBinPut: 4, opBinGet: 1, opLongBinGet: 4,
}
