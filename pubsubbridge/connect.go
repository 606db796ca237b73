package pubsubbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tributary-dev/tributary/config"
)

// EnvEmulatorHost is the variable the Pub/Sub client libraries read for the
// emulator's address. The bridge uses it only when the config says so
// (pubsub.<name>.use_emulator_env), and refuses to dial Google while it is set:
// the client library would send everything to it, unauthenticated.
const EnvEmulatorHost = "PUBSUB_EMULATOR_HOST"

// dial creates the Pub/Sub client of cfg: the emulator (plaintext, no
// authentication) when emulator_host is set, or use_emulator_env and
// PUBSUB_EMULATOR_HOST are; else Google with the credentials file, else
// application default credentials.
func dial(ctx context.Context, cfg *BridgeConfig) (*pubsub.Client, error) {
	opts, err := clientOptions(cfg.Source, cfg.PubSub, os.Getenv(EnvEmulatorHost))
	if err != nil {
		return nil, err
	}
	c, err := pubsub.NewClient(ctx, cfg.PubSub.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating pubsub client for project %s: %w", cfg.PubSub.Project, err)
	}
	return c, nil
}

// clientOptions chooses the client's endpoint and credentials for pubsub.<name>
// (ps), given the value of PUBSUB_EMULATOR_HOST in the environment (envHost).
func clientOptions(name string, ps config.PubSub, envHost string) ([]option.ClientOption, error) {
	emulatorHost, err := emulatorAddr(name, ps, envHost)
	if err != nil {
		return nil, err
	}
	if emulatorHost != "" {
		// What the client does by itself for PUBSUB_EMULATOR_HOST, made explicit
		// so that emulator_host from the config file works the same way.
		return []option.ClientOption{
			option.WithEndpoint(emulatorHost),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
			option.WithoutAuthentication(),
			option.WithTelemetryDisabled(),
		}, nil
	}
	if ps.CredentialsFile == "" {
		return nil, nil // application default credentials
	}
	typ, err := credentialsType(ps.CredentialsFile)
	if err != nil {
		return nil, err
	}
	return []option.ClientOption{option.WithAuthCredentialsFile(typ, ps.CredentialsFile)}, nil
}

// emulatorAddr is the emulator the bridge of pubsub.<name> uses, "" for
// Google: emulator_host, else PUBSUB_EMULATOR_HOST when use_emulator_env says
// so. The variable set without use_emulator_env is an error, since the client
// library would use it by itself, with no credentials: a variable left over in
// a production environment must not redirect data silently.
func emulatorAddr(name string, ps config.PubSub, envHost string) (string, error) {
	switch {
	case ps.EmulatorHost != "":
		return ps.EmulatorHost, nil
	case ps.UseEmulatorEnv && envHost == "":
		return "", fmt.Errorf("pubsub.%s.use_emulator_env is true but %s is not set", name, EnvEmulatorHost)
	case ps.UseEmulatorEnv:
		return envHost, nil
	case envHost != "":
		return "", fmt.Errorf("%s is set in the environment but pubsub.%s does not enable an emulator: unset it, or set pubsub.%s.use_emulator_env: true (or emulator_host) to use one", EnvEmulatorHost, name, name)
	}
	return "", nil
}

// credentialsType reads the "type" of a credentials JSON file, so that the
// file is loaded as what it declares and nothing else (the client refuses
// untyped files loaded from configuration for security reasons).
func credentialsType(file string) (option.CredentialsType, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading pubsub credentials file: %w", err)
	}
	var f struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return "", fmt.Errorf("pubsub credentials file %s: not JSON: %w", file, err)
	}
	switch t := option.CredentialsType(f.Type); t {
	case option.ServiceAccount, option.AuthorizedUser, option.ImpersonatedServiceAccount, option.ExternalAccount:
		return t, nil
	default:
		return "", fmt.Errorf("pubsub credentials file %s: unsupported type %q (want service_account, authorized_user, impersonated_service_account or external_account)", file, f.Type)
	}
}
