package secrets

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// awsProvider reads AWS Secrets Manager secrets. The SDK client is built on
// first use, with the context of that call, and reused.
type awsProvider struct {
	cfg AWSConfig

	mu        sync.Mutex
	client    *secretsmanager.Client
	transport *http.Transport // the SDK client's, once built
}

func newAWSProvider(cfg AWSConfig) *awsProvider {
	return &awsProvider{cfg: cfg}
}

// Name returns "aws".
func (p *awsProvider) Name() string { return ProviderAWS }

func (p *awsProvider) getClient(ctx context.Context) (*secretsmanager.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		return p.client, nil
	}
	var opts []func(*awsconfig.LoadOptions) error
	if p.cfg.Region != "" {
		opts = append(opts, awsconfig.WithRegion(p.cfg.Region))
	}
	if p.cfg.EndpointURL != "" {
		opts = append(opts, awsconfig.WithBaseEndpoint(p.cfg.EndpointURL))
	}
	if p.cfg.MaxAttempts > 0 {
		opts = append(opts, awsconfig.WithRetryMaxAttempts(p.cfg.MaxAttempts))
	}
	if p.cfg.AccessKeyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			p.cfg.AccessKeyID, p.cfg.SecretAccessKey.Expose(), p.cfg.SessionToken.Expose())))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: aws: loading the SDK configuration: %v", ErrProviderNotConfigured, err)
	}
	if ac.Region == "" {
		ac.Region = DefaultAWSRegion
	}
	// Keep the SDK's transport (with AWS_CA_BUNDLE applied) but own it, so
	// that Close can close its idle connections.
	if bc, ok := ac.HTTPClient.(*awshttp.BuildableClient); ok {
		p.transport = bc.GetTransport()
		ac.HTTPClient = &http.Client{
			Transport:     p.transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	p.client = secretsmanager.NewFromConfig(ac)
	return p.client, nil
}

// Fetch reads the current version (or secrets.aws.version_stage) of the
// secret whose name or ARN is path: its SecretString, else its
// SecretBinary; with a key, the value of that key of the JSON object it
// holds.
func (p *awsProvider) Fetch(ctx context.Context, path, key string) (Fetched, error) {
	c, err := p.getClient(ctx)
	if err != nil {
		return Fetched{}, err
	}
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(path)}
	if p.cfg.VersionStage != "" {
		in.VersionStage = aws.String(p.cfg.VersionStage)
	}
	out, err := c.GetSecretValue(ctx, in)
	if err != nil {
		return Fetched{}, classifyAWS(err, "GetSecretValue "+path)
	}
	var data []byte
	switch {
	case out.SecretString != nil:
		data = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		data = out.SecretBinary
	default:
		return Fetched{}, fmt.Errorf("%w: aws secret %s has neither SecretString nor SecretBinary", ErrInvalidData, path)
	}
	if key != "" {
		if data, err = ExtractJSONKey(data, key); err != nil {
			return Fetched{}, fmt.Errorf("aws secret %s: %w", path, err)
		}
	}
	return Fetched{Data: data, Version: aws.ToString(out.VersionId)}, nil
}

// Health lists at most one secret. AccessDeniedException counts as healthy:
// the service answered and checked the signature.
func (p *awsProvider) Health(ctx context.Context) error {
	c, err := p.getClient(ctx)
	if err != nil {
		return err
	}
	_, err = c.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)})
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "AccessDeniedException" {
		return nil
	}
	return classifyAWS(err, "ListSecrets")
}

// Close closes idle connections.
func (p *awsProvider) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	return nil
}

// classifyAWS wraps an SDK error with the sentinel it stands for.
func classifyAWS(err error, what string) error {
	sentinel := ErrUnavailable
	var rnf *smtypes.ResourceNotFoundException
	var api smithy.APIError
	switch {
	case errors.As(err, &rnf):
		sentinel = ErrNotFound
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"IncompleteSignature", "ExpiredTokenException", "MissingAuthenticationToken",
			"InvalidClientTokenId", "DecryptionFailure":
			sentinel = ErrAuth
		case "InvalidParameterException", "ValidationException":
			sentinel = ErrInvalidRef
		case "InvalidRequestException":
			// e.g. the secret is scheduled for deletion.
			sentinel = ErrNotFound
		}
	}
	return fmt.Errorf("%w: aws %s: %v", sentinel, what, err)
}
