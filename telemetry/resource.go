package telemetry

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/keel-go/keel/platform"
)

// buildResource describes the process to the collector. Later sources win:
// the SDK, host and process; the platform (deployment environment,
// Kubernetes pod, namespace and node, container id); OTEL_RESOURCE_ATTRIBUTES;
// the config's resource_attributes; service.name and service.version. It
// returns a warning (not fatal) when a detector could not read something.
func buildResource(ctx context.Context, s settings, d platform.Detector) (*resource.Resource, error) {
	var warn []error
	info, err := d.Detect()
	if err != nil {
		warn = append(warn, err)
	}
	attrs := []attribute.KeyValue{semconv.DeploymentEnvironmentNameKey.String(info.AppEnv)}
	if info.PodName != "" {
		attrs = append(attrs, semconv.K8SPodName(info.PodName), semconv.ServiceInstanceID(info.PodName))
	}
	if info.Namespace != "" {
		attrs = append(attrs, semconv.K8SNamespaceName(info.Namespace))
	}
	if info.NodeName != "" {
		attrs = append(attrs, semconv.K8SNodeName(info.NodeName))
	}
	if info.ContainerID != "" {
		attrs = append(attrs, semconv.ContainerID(info.ContainerID))
	}
	keys := make([]string, 0, len(s.resourceAttrs))
	for k := range s.resourceAttrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, attribute.String(k, s.resourceAttrs[k]))
	}
	attrs = append(attrs, semconv.ServiceName(s.serviceName))
	if s.serviceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(s.serviceVersion))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithAttributes(attrs...),
	)
	if err != nil {
		if res == nil || !errors.Is(err, resource.ErrPartialResource) {
			return nil, fmt.Errorf("telemetry: build the resource: %w", err)
		}
		warn = append(warn, err)
	}
	return res, errors.Join(warn...)
}
