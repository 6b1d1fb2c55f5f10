package apisix

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// APIKeyFromSecret reads the Admin API key from data[key] of Secret
// namespace/name, without surrounding white space. Errors name the Secret and
// the key, never the value.
func APIKeyFromSecret(ctx context.Context, r client.Reader, namespace, name, key string) (string, error) {
	var s corev1.Secret
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		return "", fmt.Errorf("apisix: reading admin API key from secret %s/%s: %w", namespace, name, err)
	}
	v := strings.TrimSpace(string(s.Data[key])) // files made with echo end in a newline
	if v == "" {
		return "", fmt.Errorf("apisix: secret %s/%s has no (or an empty) %q entry for the admin API key", namespace, name, key)
	}
	return v, nil
}
