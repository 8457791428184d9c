package rules

// Workaround for `ct original ip saddr` (and `ct original packets`) in
// google/nftables v0.3.0.
//
// nft(8) compiles `ct original ip saddr` to a ct expression with key
// NFT_CT_SRC_IP and NFTA_CT_DIRECTION = IP_CT_DIR_ORIGINAL, and the kernel
// requires the direction for that key (nft_ct_get_init returns EINVAL
// without it). expr.Ct in google/nftables v0.3.0 (the newest release) only
// marshals NFTA_CT_DIRECTION for the old keys NFT_CT_SRC/DST/PROTO_SRC/
// PROTO_DST, and expr.Any cannot be implemented outside package expr. The old
// key NFT_CT_SRC would work in the kernel, but nft 1.0.6 aborts when it lists
// a lookup fed by it (netlink_parse_concat_expr assertion), so it is no
// substitute.
//
// So addRule hands the library a placeholder expression of the same encoded
// size (key NFT_CT_SRC, 4-byte direction) and then rewrites, in the rule
// message just buffered on the Conn and not yet sent, exactly those bytes
// into what libnftnl sends for `ct original ip saddr`: key NFT_CT_SRC_IP,
// dreg, 1-byte direction. The buffered messages are reached by reflection;
// every assumption is checked and a failure is an error, never a silently
// different rule. Apply checks the whole procedure on a scratch connection
// first, so a library that no longer fits is reported before anything is
// buffered on the caller's Conn.
//
// Why not a newer google/nftables: upstream added the direction for these
// keys in commit 8a8ad2b ("ct: Add optional direction fields", June 2025),
// after v0.3.0, but the module proxy this project builds with serves no
// pseudo-version of that commit, and the one it does serve
// (v0.3.1-0.20251119083706-1db35da82052) changes every message the golden
// tests pin: it adds NFTA_RULE_ID to each rule (upstream d11ef81), stops
// requesting ACKs (NLM_F_ACK gone from every header, dca01dd), expects rule
// handles echoed back in Flush, and changes the type of the buffered message
// list that patchSetUserData also needs. Every commit that has the ct direction
// already carries the rule ID change. Drop this file when natreveal moves
// to a release with the direction and takes its new message format.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ctPatch is one expression to rewrite in a marshaled rule.
type ctPatch struct {
	placeholder, want []byte
}

// addRule adds r to c, rewriting ct address expressions as described above.
func addRule(c *nftables.Conn, r *nftables.Rule) error {
	exprs := make([]expr.Any, len(r.Exprs))
	var patches []ctPatch
	for i, e := range r.Exprs {
		exprs[i] = e
		ct, ok := e.(*expr.Ct)
		if !ok || ct.SourceRegister || (ct.Key != ctKeySrcIP && ct.Key != ctKeyDstIP && ct.Key != expr.CtKeyPKTS) {
			continue
		}
		p, err := ctAddrPatch(byte(r.Table.Family), ct)
		if err != nil {
			return err
		}
		exprs[i] = p.stub
		patches = append(patches, p.ctPatch)
	}
	if len(patches) == 0 {
		c.AddRule(r)
		return nil
	}
	rr := *r
	rr.Exprs = exprs
	c.AddRule(&rr)
	data, err := lastMessageData(c)
	if err != nil {
		return err
	}
	return applyPatches(data, patches)
}

// ctKeyDstIP is NFT_CT_DST_IP, handled like ctKeySrcIP.
const ctKeyDstIP = expr.CtKey(unix.NFT_CT_DST_IP)

type ctStub struct {
	ctPatch
	stub *expr.Ct
}

// ctAddrPatch returns the placeholder for ct (a load of key NFT_CT_SRC_IP,
// NFT_CT_DST_IP or NFT_CT_PKTS) and the bytes that replace its encoding.
func ctAddrPatch(fam byte, ct *expr.Ct) (ctStub, error) {
	if ct.Direction > 1 {
		return ctStub{}, fmt.Errorf("ct direction %d", ct.Direction)
	}
	stubKey := expr.CtKeySRC
	switch ct.Key {
	case ctKeyDstIP:
		stubKey = expr.CtKeyDST
	case expr.CtKeyPKTS: // `ct original packets`: the same problem
		stubKey = expr.CtKeyPROTOSRC
	}
	stub := &expr.Ct{Register: ct.Register, Key: stubKey, Direction: ct.Direction}
	placeholder, err := expr.Marshal(fam, stub)
	if err != nil {
		return ctStub{}, err
	}
	want, err := marshalCtLoad(ct.Register, ct.Key, uint8(ct.Direction))
	if err != nil {
		return ctStub{}, err
	}
	if len(placeholder) != len(want) {
		return ctStub{}, fmt.Errorf("ct workaround: placeholder is %d bytes, want %d", len(placeholder), len(want))
	}
	return ctStub{ctPatch: ctPatch{placeholder: placeholder, want: want}, stub: stub}, nil
}

// marshalCtLoad encodes a ct load with direction as libnftnl does
// (src/expr/ct.c: NFTA_CT_KEY, NFTA_CT_DREG, NFTA_CT_DIRECTION as u8).
func marshalCtLoad(reg uint32, key expr.CtKey, dir uint8) ([]byte, error) {
	data, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_CT_KEY, Data: binary.BigEndian.AppendUint32(nil, uint32(key))},
		{Type: unix.NFTA_CT_DREG, Data: binary.BigEndian.AppendUint32(nil, reg)},
		{Type: unix.NFTA_CT_DIRECTION, Data: []byte{dir}},
	})
	if err != nil {
		return nil, err
	}
	return netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_EXPR_NAME, Data: []byte("ct\x00")},
		{Type: unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, Data: data},
	})
}

// applyPatches rewrites, in place, each placeholder in data; each must occur
// exactly as often as it was used.
func applyPatches(data []byte, patches []ctPatch) error {
	uses := map[string]int{}
	for _, p := range patches {
		uses[string(p.placeholder)]++
	}
	done := map[string]bool{}
	for _, p := range patches {
		if done[string(p.placeholder)] {
			continue
		}
		done[string(p.placeholder)] = true
		if n := bytes.Count(data, p.placeholder); n != uses[string(p.placeholder)] {
			return fmt.Errorf("ct workaround: placeholder found %d times in the rule message, want %d", n, uses[string(p.placeholder)])
		}
		for off := 0; ; {
			i := bytes.Index(data[off:], p.placeholder)
			if i < 0 {
				break
			}
			copy(data[off+i:], p.want)
			off += i + len(p.want)
		}
	}
	return nil
}

// lastMessageData returns the payload of the message most recently buffered
// on c (nftables.Conn.messages, unexported), to be modified in place.
func lastMessageData(c *nftables.Conn) ([]byte, error) {
	msgs := reflect.ValueOf(c).Elem().FieldByName("messages")
	if !msgs.IsValid() || msgs.Kind() != reflect.Slice || msgs.Type().Elem() != reflect.TypeFor[netlink.Message]() {
		return nil, errors.New("ct workaround: nftables.Conn has no messages []netlink.Message field")
	}
	if msgs.Len() == 0 {
		return nil, errors.New("ct workaround: no message buffered")
	}
	return msgs.Index(msgs.Len() - 1).FieldByName("Data").Bytes(), nil
}

var ctWorkaround struct {
	once sync.Once
	err  error
}

// ctWorkaroundOK runs addRule with a `ct original ip saddr` rule on a scratch
// connection (never dialled) and checks the message it buffers.
func ctWorkaroundOK() error {
	ctWorkaround.once.Do(func() { ctWorkaround.err = checkCtWorkaround() })
	return ctWorkaround.err
}

func checkCtWorkaround() error {
	c, err := nftables.New(nftables.WithTestDial(func([]netlink.Message) ([]netlink.Message, error) {
		return nil, errors.New("scratch connection")
	}))
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "scratch"}
	ch := &nftables.Chain{Name: "scratch", Table: t}
	ct := &expr.Ct{Register: 1, Key: ctKeySrcIP, Direction: ctDirOriginal}
	if err := addRule(c, &nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{ct}}); err != nil {
		return err
	}
	want, err := marshalCtLoad(1, ctKeySrcIP, ctDirOriginal)
	if err != nil {
		return err
	}
	data, err := lastMessageData(c)
	if err != nil {
		return err
	}
	if !bytes.Contains(data, want) {
		return errors.New("ct workaround: rewritten rule does not hold the ct expression")
	}
	return nil
}
