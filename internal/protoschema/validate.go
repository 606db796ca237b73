package protoschema

import "fmt"

// validate checks what both forms must satisfy: unique type names, unique
// field names and numbers per message, valid names and numbers, oneof
// indexes in range, named types with a name, enums with values, and map
// entries shaped as protoc makes them. Name lengths and nesting are checked
// here again for the serialized form.
func (f *File) validate(l Limits) error {
	seen := map[string]string{}
	claim := func(full, what string) error {
		if len(full) > l.MaxNameLen {
			return limitErr("the full name of %s %s is longer than %d bytes", what, full, l.MaxNameLen)
		}
		if prev, dup := seen[full]; dup {
			return fmt.Errorf("duplicate %s %s (already a %s)", what, full, prev)
		}
		seen[full] = what
		return nil
	}
	checkEnum := func(e *Enum) error {
		if !validIdent(e.Name) {
			return fmt.Errorf("enum name %q is not a valid identifier", e.Name)
		}
		if err := claim(e.FullName, "enum"); err != nil {
			return err
		}
		if len(e.Values) == 0 {
			return fmt.Errorf("enum %s has no values", e.FullName)
		}
		for _, v := range e.Values {
			if !validIdent(v.Name) {
				return fmt.Errorf("enum %s: value name %q is not a valid identifier", e.FullName, v.Name)
			}
		}
		return nil
	}
	for _, e := range f.Enums {
		if err := checkEnum(e); err != nil {
			return err
		}
	}
	var walk func(ms []*Message, depth int) error
	walk = func(ms []*Message, depth int) error {
		if len(ms) > 0 && depth > l.MaxDepth {
			return limitErr("messages nested deeper than %d levels", l.MaxDepth)
		}
		for _, m := range ms {
			if !validIdent(m.Name) {
				return fmt.Errorf("message name %q is not a valid identifier", m.Name)
			}
			if err := claim(m.FullName, "message"); err != nil {
				return err
			}
			if err := m.validateFields(); err != nil {
				return err
			}
			for _, e := range m.Enums {
				if err := checkEnum(e); err != nil {
					return err
				}
			}
			if err := walk(m.Messages, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(f.Messages, 1); err != nil {
		return err
	}
	for _, x := range f.Extensions {
		if err := checkField(x, "extension"); err != nil {
			return err
		}
	}
	return nil
}

func (m *Message) validateFields() error {
	numbers := map[int32]string{}
	names := map[string]bool{}
	for _, fd := range m.Fields {
		if err := checkField(fd, "message "+m.FullName+":"); err != nil {
			return err
		}
		if prev, dup := numbers[fd.Number]; dup {
			return fmt.Errorf("message %s: fields %s and %s share number %d", m.FullName, prev, fd.Name, fd.Number)
		}
		if names[fd.Name] {
			return fmt.Errorf("message %s: duplicate field %s", m.FullName, fd.Name)
		}
		numbers[fd.Number], names[fd.Name] = fd.Name, true
		if fd.Oneof >= len(m.Oneofs) || fd.Oneof < -1 {
			return fmt.Errorf("message %s: field %s names oneof %d of %d", m.FullName, fd.Name, fd.Oneof, len(m.Oneofs))
		}
	}
	for _, x := range m.Extensions {
		if err := checkField(x, "message "+m.FullName+": extension"); err != nil {
			return err
		}
	}
	if m.MapEntry {
		if len(m.Fields) != 2 || m.Fields[0].Number != 1 || m.Fields[1].Number != 2 ||
			!m.Fields[0].Kind.Scalar() || m.Fields[0].Label == Repeated || m.Fields[1].Label == Repeated {
			return fmt.Errorf("map entry %s must have a scalar key = 1 and a value = 2", m.FullName)
		}
	}
	return nil
}

func checkField(fd *Field, where string) error {
	if !validIdent(fd.Name) {
		return fmt.Errorf("%s field name %q is not a valid identifier", where, fd.Name)
	}
	if fd.Number < 1 || fd.Number > maxFieldNumber {
		return fmt.Errorf("%s field %s: number %d is not in 1..%d", where, fd.Name, fd.Number, maxFieldNumber)
	}
	if fd.Label < Optional || fd.Label > Repeated {
		return fmt.Errorf("%s field %s: invalid label %d", where, fd.Name, fd.Label)
	}
	if fd.Kind > Sint64 {
		return fmt.Errorf("%s field %s: invalid type %d", where, fd.Name, fd.Kind)
	}
	if !fd.Kind.Scalar() && fd.TypeName == "" {
		return fmt.Errorf("%s field %s: a %s field needs a type name", where, fd.Name, fd.Kind)
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentStart(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}
