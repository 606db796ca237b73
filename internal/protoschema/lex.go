package protoschema

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// token is one lexical token of .proto text.
type token struct {
	s    string
	kind byte // 'i' identifier (dots included), 'n' number, 's' string, 'p' punctuation, 0 end
	line int
	col  int
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits src into tokens, dropping whitespace and comments. Identifiers
// keep their dots ("google.protobuf.Timestamp", ".acme.Money").
func lex(src string, lim Limits) ([]token, error) {
	var toks []token
	line, lineStart := 1, 0
	pos := func(i int) (int, int) { return line, i - lineStart + 1 }
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
			lineStart = i
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			l, col := pos(i)
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("%d:%d: unterminated comment", l, col)
			}
			for j := i; j < i+2+end; j++ {
				if src[j] == '\n' {
					line++
					lineStart = j + 1
				}
			}
			i += end + 4
		case isIdentStart(c) || c == '.' && i+1 < len(src) && isIdentStart(src[i+1]):
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j]) || src[j] == '.') {
				j++
			}
			l, col := pos(i)
			if j-i > lim.MaxNameLen {
				return nil, limitErr("%d:%d: a name is longer than %d bytes", l, col, lim.MaxNameLen)
			}
			toks = append(toks, token{src[i:j], 'i', l, col})
			i = j
		case isDigit(c) || c == '.' && i+1 < len(src) && isDigit(src[i+1]):
			j := i + 1
			for j < len(src) && (isIdentStart(src[j]) || isDigit(src[j]) || src[j] == '.' ||
				(src[j] == '+' || src[j] == '-') && (src[j-1] == 'e' || src[j-1] == 'E') && !strings.HasPrefix(src[i:], "0x") && !strings.HasPrefix(src[i:], "0X")) {
				j++
			}
			l, col := pos(i)
			toks = append(toks, token{src[i:j], 'n', l, col})
			i = j
		case c == '"' || c == '\'':
			l, col := pos(i)
			j := i + 1
			for j < len(src) && src[j] != c {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && src[j] == '\n' {
					return nil, fmt.Errorf("%d:%d: newline in string", l, col)
				}
				j++
			}
			if j >= len(src) {
				return nil, fmt.Errorf("%d:%d: unterminated string", l, col)
			}
			toks = append(toks, token{src[i : j+1], 's', l, col})
			i = j + 1
		case strings.IndexByte("{}[]()<>;=,:-+/.", c) >= 0:
			l, col := pos(i)
			toks = append(toks, token{string(c), 'p', l, col})
			i++
		default:
			l, col := pos(i)
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, fmt.Errorf("%d:%d: unexpected character %q", l, col, r)
		}
	}
	return toks, nil
}

// unquote decodes a string literal (with its quotes) by the protobuf
// language's escapes: \a \b \f \n \r \t \v \\ \' \" \? octal \NNN, hex \xHH,
// and \uHHHH, \UHHHHHHHH.
func unquote(lit string) (string, error) {
	s := lit[1 : len(lit)-1]
	if !strings.ContainsRune(s, '\\') {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", fmt.Errorf("string ends with a backslash")
		}
		c = s[i]
		switch c {
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '\\', '\'', '"', '?':
			b.WriteByte(c)
		case 'x', 'X':
			n, v := 0, 0
			for n < 2 && i+1 < len(s) && hexVal(s[i+1]) >= 0 {
				i++
				v = v*16 + hexVal(s[i])
				n++
			}
			if n == 0 {
				return "", fmt.Errorf("\\x without hex digits")
			}
			b.WriteByte(byte(v))
		case 'u', 'U':
			want := 4
			if c == 'U' {
				want = 8
			}
			if i+want > len(s)-1 {
				return "", fmt.Errorf("short \\%c escape", c)
			}
			v := 0
			for k := 0; k < want; k++ {
				h := hexVal(s[i+1+k])
				if h < 0 {
					return "", fmt.Errorf("invalid \\%c escape", c)
				}
				v = v*16 + h
			}
			i += want
			if v > utf8.MaxRune {
				return "", fmt.Errorf("\\%c escape out of range", c)
			}
			b.WriteRune(rune(v))
		default:
			if c >= '0' && c <= '7' {
				v, n := 0, 0
				for n < 3 && i < len(s) && s[i] >= '0' && s[i] <= '7' {
					v = v*8 + int(s[i]-'0')
					i++
					n++
				}
				i--
				if v > 255 {
					return "", fmt.Errorf("octal escape out of range")
				}
				b.WriteByte(byte(v))
				continue
			}
			return "", fmt.Errorf("unknown escape \\%c", c)
		}
	}
	return b.String(), nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
