package packet

// FinalDst is finalDst for the external tests (package packet_test), which
// build their packets with package packettest.
var FinalDst = finalDst
