package yamlerr

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Document parses data, a file that should hold at most one YAML document, and
// returns the document's top-level node, or nil when data holds none. When data
// holds a second document, next is its first node and callers word the
// complaint. A syntax error comes back as an *Error at the line of the mistake
// (see syntaxError), with no column and the message "syntax error: ...".
func Document(file string, data []byte) (root, next *yaml.Node, err *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if e := dec.Decode(&doc); e != nil {
		if errors.Is(e, io.EOF) {
			return nil, nil, nil
		}
		return nil, nil, syntaxError(file, data, e)
	}
	var second yaml.Node
	switch e := dec.Decode(&second); {
	case errors.Is(e, io.EOF):
	case e != nil:
		return nil, nil, syntaxError(file, data, e)
	default:
		return nil, &second, nil
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil, nil
	}
	return &doc, nil, nil
}

// lineLabel is how yaml.v3 starts a message that has a line.
var lineLabel = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns an error of yaml.v3's parser into an *Error at the line of
// the mistake.
//
// The line yaml.v3 prints is seldom that line. It is the line of the "context
// mark", where the construct being parsed began: 0-based for parser errors and
// 1-based for scanner errors, so "[a, b}" on line 5 reads "line 4" and a tab in
// the indentation of line 3, inside a value begun on line 2, reads "line 2";
// with no context on the first line it is the 0-based line of the problem, or
// nothing. The problem's own position is not exposed. So the line of the
// mistake is found as the first line at which the file, cut after that line,
// fails with the same message; the search starts at the printed line, which is
// never after the mistake. For an unclosed "{" this is the line the brace
// should have been closed on rather than the later line where yaml.v3 noticed.
// When the search gives up (see maxReparse) the printed line is used.
func syntaxError(file string, data []byte, err error) *Error {
	printed, msg := splitMessage(err)
	line := mistakeLine(data, max(printed, 1), msg)
	if line == 0 {
		line = max(printed, 1)
	}
	return &Error{File: file, Line: line, Msg: "syntax error: " + msg}
}

// splitMessage returns the line yaml.v3 printed in err (0 for none) and the
// message without it.
func splitMessage(err error) (line int, msg string) {
	msg = err.Error()
	if m := lineLabel.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, msg[len(m[0]):]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// maxReparse bounds the bytes mistakeLine parses in all, so that a syntax error
// far from where its construct began in a large file costs about 0.2s at most
// (yaml.v3 builds nodes at about 5 MB/s). Config and policy files are a few
// kilobytes, and their mistakes a few lines from where yaml.v3 points.
const maxReparse = 1 << 20

// mistakeLine returns the first line n >= from such that data cut after line n
// fails to parse with msg, or 0 when there is none or the search gives up.
func mistakeLine(data []byte, from int, msg string) int {
	budget := maxReparse
	end := 0
	for i, l := range bytes.SplitAfter(data, []byte("\n")) {
		end += len(l)
		if i+1 < from || len(l) == 0 {
			continue
		}
		if budget -= end; budget < 0 {
			return 0
		}
		if err := parse(data[:end]); err != nil {
			if _, m := splitMessage(err); m == msg {
				return i + 1
			}
		}
	}
	return 0
}

// parse parses up to two documents, as Document does, and returns the error.
func parse(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range 2 {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}
