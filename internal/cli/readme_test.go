package cli

import (
	"os"
	"strings"
	"testing"
)

// The commands the top-level README.md shows give the output it shows.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	t.Chdir("../..") // the README's paths are relative to the repository

	// The delegator section: a `bin/linnet dtab eval` command and its output.
	cmd := between(t, readme, "```sh\nbin/linnet dtab eval", "\n```")
	want := between(t, readme, cmd+"\n```\n\n```text\n", "```")
	args := shellWords(t, strings.ReplaceAll("dtab eval"+cmd, "\\\n", " "))
	linnet(t, "", args...).want(t, 0, want)

	// The namerd section: its namerd.yaml is valid, and its dtab parses.
	namerdYAML := between(t, readme, "cat > namerd.yaml <<'EOF'\n", "EOF\n")
	linnet(t, namerdYAML, "namerd", "-validate", "-").want(t, 0, "configuration is valid\n")
	linnet(t, namerdYAML, "check", "-").want(t, 0, "<stdin>: OK (namerd: storage io.l5d.inMemory, 1 interface, 0 namers)\n")
	dtabLine := between(t, readme, "echo '", "' > internal.dtab")
	r := linnet(t, "", "dtab", "eval", "--dtab", dtabLine, "/svc/world")
	if r.code != 0 || !strings.Contains(r.out, "/svc/world-v2") {
		t.Errorf("the README's internal.dtab: %+v", r)
	}
}

// between returns the text of s after the first start and before the next
// end.
func between(t *testing.T, s, start, end string) string {
	t.Helper()
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		t.Fatalf("README.md has no %q", start)
	}
	out, _, ok := strings.Cut(rest, end)
	if !ok {
		t.Fatalf("README.md: no %q after %q", end, start)
	}
	return out
}

// shellWords splits a command line as sh does for words, spaces and single
// quotes, which is all the README uses.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, c := range line {
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			w.WriteRune(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}
