//lint:file-ignore SA1019 this file builds v1 Endpoints, the fallback the namer supports

package k8s

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// legacyEndpoints is a v1 Endpoints object (one subset) for the fallback test.
func legacyEndpoints(ns string) *corev1.Endpoints {
	node := "node-a"
	return &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: ns},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.4.0.1", NodeName: &node}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.4.0.2"}},
			Ports:             []corev1.EndpointPort{{Name: "http", Port: 9000, Protocol: corev1.ProtocolTCP}},
		}},
	}
}
