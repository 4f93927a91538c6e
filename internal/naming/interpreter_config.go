package naming

import (
	"errors"
	"fmt"

	"github.com/linnet-mesh/linnet/internal/config"
)

func init() {
	config.Register[InterpreterConfig]("default", func() InterpreterConfig { return &DefaultInterpreterConfig{} })
}

// DefaultInterpreterConfig is the `interpreter: {kind: default}` block: the
// router's dtab and request dtabs resolved against the configured namers
// and the /$/ system namers (config.md §4.6).
type DefaultInterpreterConfig struct {
	// Transformers rewrite every bound tree, in order (config.md §4.7).
	Transformers []config.Kinded[TransformerConfig] `yaml:"transformers"`
	// Experimental is accepted for compatibility.
	Experimental bool `yaml:"experimental"`
}

// NewInterpreter implements InterpreterConfig.
func (c *DefaultInterpreterConfig) NewInterpreter(env InterpreterEnv) (Interpreter, error) {
	tenv := env.Env
	if tenv.Namers == nil {
		tenv.Namers = env.Namers
	}
	ts, err := NewTransformers(tenv, c.Transformers)
	if err != nil {
		return nil, err
	}
	return NewInterpreter(env.Namers, WithTransformers(ts...)), nil
}

// NewTransformers builds an interpreter's configured `transformers`, in
// order; an error names the entry (interpreter.transformers[i] (kind)),
// and the key when the transformer reports one as a *config.Error
// (interpreter.transformers[i].path (kind)).
func NewTransformers(env Env, ks []config.Kinded[TransformerConfig]) ([]Transformer, error) {
	var ts []Transformer
	for i, k := range ks {
		if k.Value == nil {
			continue
		}
		t, err := k.Value.NewTransformer(env)
		if err != nil {
			if ce := (*config.Error)(nil); errors.As(err, &ce) && ce.Path != "" {
				return nil, fmt.Errorf("interpreter.transformers[%d].%s (%s): %s", i, ce.Path, k.Kind, ce.Msg)
			}
			return nil, fmt.Errorf("interpreter.transformers[%d] (%s): %w", i, k.Kind, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}
