package hostid

import "fmt"

// Format prints a HOST_ID as the mapping log and the server-side readers
// do: hex, 4 digits for up to 16 bits, else 8.
func Format(id uint32, bits int) string {
	if bits <= 16 {
		return fmt.Sprintf("0x%04x", id)
	}
	return fmt.Sprintf("0x%08x", id)
}
