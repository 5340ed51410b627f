package xmpp

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"strings"
	"unicode"
)

// Namespaces of the protocols this package speaks.
const (
	nsClient   = "jabber:client"
	nsStream   = "http://etherx.jabber.org/streams"
	nsFraming  = "urn:ietf:params:xml:ns:xmpp-framing"
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	nsRoster   = "jabber:iq:roster"
	nsDiscoInf = "http://jabber.org/protocol/disco#info"
	nsDiscoIt  = "http://jabber.org/protocol/disco#items"
	nsPing     = "urn:xmpp:ping"
	nsCarbons  = "urn:xmpp:carbons:2"
	nsForward  = "urn:xmpp:forward:0"
	nsDelay    = "urn:xmpp:delay"
	nsSID      = "urn:xmpp:sid:0"
	nsChatStat = "http://jabber.org/protocol/chatstates"
	nsMAM      = "urn:xmpp:mam:2"
	nsRSM      = "http://jabber.org/protocol/rsm"
	nsData     = "jabber:x:data"
	nsMUC      = "http://jabber.org/protocol/muc"
	nsMUCUser  = "http://jabber.org/protocol/muc#user"
	nsHints    = "urn:xmpp:hints"
)

// Element is one XML element of a stanza: its name (namespace resolved),
// attributes and children, each an *Element or a string of character data.
type Element struct {
	Name     xml.Name
	Attr     []xml.Attr
	Children []any
}

// el returns a new element of namespace space (empty: inherit) named
// local, with attributes given as name, value pairs; pairs with an empty
// value are left out.
func el(space, local string, attrs ...string) *Element {
	e := &Element{Name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i+1] != "" {
			e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: attrs[i]}, Value: attrs[i+1]})
		}
	}
	return e
}

// add appends children (elements or strings; nil elements are skipped) and
// returns e.
func (e *Element) add(children ...any) *Element {
	for _, c := range children {
		switch v := c.(type) {
		case *Element:
			if v != nil {
				e.Children = append(e.Children, v)
			}
		case string:
			if v != "" {
				e.Children = append(e.Children, v)
			}
		}
	}
	return e
}

// text adds character data and returns e.
func (e *Element) text(s string) *Element { return e.add(s) }

// attr returns the value of the attribute local (in no namespace).
func (e *Element) attr(local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == "xml") {
			return a.Value
		}
	}
	return ""
}

// setAttr sets (or, with an empty value, removes) the attribute local.
func (e *Element) setAttr(local, value string) {
	for i, a := range e.Attr {
		if a.Name.Local == local && a.Name.Space == "" {
			if value == "" {
				e.Attr = append(e.Attr[:i], e.Attr[i+1:]...)
			} else {
				e.Attr[i].Value = value
			}
			return
		}
	}
	if value != "" {
		e.Attr = append(e.Attr, xml.Attr{Name: xml.Name{Local: local}, Value: value})
	}
}

// child returns the first child element named local in namespace space
// (any namespace when space is "*"), or nil.
func (e *Element) child(space, local string) *Element {
	for _, c := range e.Children {
		if ce, ok := c.(*Element); ok && ce.Name.Local == local && (space == "*" || ce.Name.Space == space) {
			return ce
		}
	}
	return nil
}

// elements returns the child elements.
func (e *Element) elements() []*Element {
	var out []*Element
	for _, c := range e.Children {
		if ce, ok := c.(*Element); ok {
			out = append(out, ce)
		}
	}
	return out
}

// textContent returns the element's character data (its direct text
// children, concatenated).
func (e *Element) textContent() string {
	var b strings.Builder
	for _, c := range e.Children {
		if s, ok := c.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// childText returns the text of the child space/local, or "".
func (e *Element) childText(space, local string) string {
	if c := e.child(space, local); c != nil {
		return c.textContent()
	}
	return ""
}

// is reports whether e is space/local.
func (e *Element) is(space, local string) bool { return e.Name.Space == space && e.Name.Local == local }

// encode writes e to b. parentNS is the default namespace in scope: an
// element of another namespace declares its own. Attributes in the xml
// namespace keep the xml: prefix; others are written unqualified.
func (e *Element) encode(b *bytes.Buffer, parentNS string) {
	b.WriteByte('<')
	b.WriteString(e.Name.Local)
	ns := e.Name.Space
	if ns == "" {
		ns = parentNS
	} else if ns != parentNS {
		b.WriteString(` xmlns="`)
		escapeAttr(b, ns)
		b.WriteByte('"')
	}
	for _, a := range e.Attr {
		if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
			continue
		}
		b.WriteByte(' ')
		if a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/XML/1998/namespace" {
			b.WriteString("xml:")
		}
		b.WriteString(a.Name.Local)
		b.WriteString(`="`)
		escapeAttr(b, a.Value)
		b.WriteByte('"')
	}
	if len(e.Children) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	for _, c := range e.Children {
		switch v := c.(type) {
		case *Element:
			v.encode(b, ns)
		case string:
			escapeText(b, v)
		}
	}
	b.WriteString("</")
	b.WriteString(e.Name.Local)
	b.WriteByte('>')
}

// bytes returns e encoded with parentNS as the namespace in scope.
func (e *Element) bytes(parentNS string) []byte {
	var b bytes.Buffer
	e.encode(&b, parentNS)
	return b.Bytes()
}

func escapeText(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s))
}

func escapeAttr(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		case '\t':
			b.WriteString("&#x9;")
		default:
			b.WriteByte(c)
		}
	}
}

// Limits on what the reader accepts.
const (
	// MaxStanzaBytes is the largest stanza read; a larger one ends the
	// stream with a policy-violation error.
	MaxStanzaBytes = 64 << 10
	// maxDepth is the deepest nesting of elements in a stanza.
	maxDepth = 32
	// maxAttrs is the most attributes one element may have.
	maxAttrs = 32
	// maxChildren bounds the elements of one stanza, all levels together.
	maxElements = 2048
)

// streamError is a condition that ends the stream (RFC 6120 4.9).
type streamError struct {
	condition string
	text      string
}

func (e *streamError) Error() string {
	if e.text != "" {
		return "xmpp stream error " + e.condition + ": " + e.text
	}
	return "xmpp stream error " + e.condition
}

func errStream(condition, text string) *streamError {
	return &streamError{condition: condition, text: text}
}

// readElement reads the rest of the element whose start tag is start from
// d, applying the depth, attribute and element-count limits and refusing
// the XML that RFC 6120 forbids (comments, processing instructions,
// DTDs). encoding/xml never expands an entity other than the five
// predefined and character references, so a document that declares
// entities fails at its DOCTYPE.
func readElement(d *xml.Decoder, start xml.StartElement) (*Element, error) {
	root, err := newElement(start)
	if err != nil {
		return nil, err
	}
	stack := []*Element{root}
	count := 1
	for len(stack) > 0 {
		tok, err := d.Token()
		if err != nil {
			return nil, xmlError(err)
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			if count++; count > maxElements {
				return nil, errStream("policy-violation", "too many elements in one stanza")
			}
			if len(stack) >= maxDepth {
				return nil, errStream("policy-violation", "elements nested too deep")
			}
			e, err := newElement(t)
			if err != nil {
				return nil, err
			}
			top.Children = append(top.Children, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if n := len(top.Children); n > 0 {
				if s, ok := top.Children[n-1].(string); ok {
					top.Children[n-1] = s + string(t)
					continue
				}
			}
			top.Children = append(top.Children, string(t))
		default:
			return nil, restricted(tok)
		}
	}
	return root, nil
}

// restricted is the error for a token RFC 6120 forbids in a stream.
func restricted(tok xml.Token) error {
	switch tok.(type) {
	case xml.Comment:
		return errStream("restricted-xml", "comments are not allowed")
	case xml.ProcInst:
		return errStream("restricted-xml", "processing instructions are not allowed")
	case xml.Directive:
		return errStream("restricted-xml", "DTDs and entity declarations are not allowed")
	}
	return errStream("restricted-xml", "")
}

func newElement(start xml.StartElement) (*Element, error) {
	if len(start.Attr) > maxAttrs {
		return nil, errStream("policy-violation", "too many attributes")
	}
	if !isNCName(start.Name.Local) {
		return nil, errStream("not-well-formed", "invalid element name")
	}
	e := &Element{Name: start.Name, Attr: make([]xml.Attr, 0, len(start.Attr))}
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		if !isNCName(a.Name.Local) {
			return nil, errStream("not-well-formed", "invalid attribute name")
		}
		e.Attr = append(e.Attr, a)
	}
	return e, nil
}

// isNCName reports whether s is a name without a colon (XML Namespaces
// NCName): encoding/xml splits prefixed names without checking the part
// after the colon, and the writer must never emit what a reader refuses.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '-' || r == '.' || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || r == 0xB7):
		default:
			return false
		}
	}
	return true
}

// xmlError maps a decoder error to the stream error it calls for.
func xmlError(err error) error {
	var se *streamError
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errStream("connection-timeout", "nothing read within the idle timeout")
	}
	var syn *xml.SyntaxError
	if errors.As(err, &syn) {
		return errStream("not-well-formed", syn.Msg)
	}
	return err
}
