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
)

// EnvEmulatorHost is the variable the Pub/Sub client libraries read for the
// emulator's address; pubsub.<name>.emulator_host takes precedence over it.
const EnvEmulatorHost = "PUBSUB_EMULATOR_HOST"

// dial creates the Pub/Sub client of cfg: the emulator (plaintext, no
// authentication) when emulator_host or PUBSUB_EMULATOR_HOST is set, else
// Google with the credentials file, else application default credentials.
func dial(ctx context.Context, cfg *BridgeConfig) (*pubsub.Client, error) {
	opts, err := clientOptions(cfg.PubSub.EmulatorHost, os.Getenv(EnvEmulatorHost), cfg.PubSub.CredentialsFile)
	if err != nil {
		return nil, err
	}
	c, err := pubsub.NewClient(ctx, cfg.PubSub.Project, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating pubsub client for project %s: %w", cfg.PubSub.Project, err)
	}
	return c, nil
}

func clientOptions(emulatorHost, envHost, credentialsFile string) ([]option.ClientOption, error) {
	if emulatorHost == "" {
		emulatorHost = envHost
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
	if credentialsFile == "" {
		return nil, nil // application default credentials
	}
	typ, err := credentialsType(credentialsFile)
	if err != nil {
		return nil, err
	}
	return []option.ClientOption{option.WithAuthCredentialsFile(typ, credentialsFile)}, nil
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
