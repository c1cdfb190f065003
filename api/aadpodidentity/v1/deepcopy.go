package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Hand-written deep copies. deepcopy_test.go checks that every pointer,
// slice and map is duplicated, so a new field without a copy here fails
// the test.

func copyInt32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// DeepCopyInto copies in into out.
func (in *AzureIdentitySpec) DeepCopyInto(out *AzureIdentitySpec) {
	*out = *in
	if in.AuxiliaryTenantIDs != nil {
		out.AuxiliaryTenantIDs = append([]string(nil), in.AuxiliaryTenantIDs...)
	}
	out.Replicas = copyInt32(in.Replicas)
}

// DeepCopyInto copies in into out.
func (in *AzureIdentity) DeepCopyInto(out *AzureIdentity) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureIdentity) DeepCopy() *AzureIdentity {
	if in == nil {
		return nil
	}
	out := new(AzureIdentity)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzureIdentity) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzureIdentityList) DeepCopyInto(out *AzureIdentityList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AzureIdentity, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureIdentityList) DeepCopy() *AzureIdentityList {
	if in == nil {
		return nil
	}
	out := new(AzureIdentityList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzureIdentityList) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzureIdentityBindingSpec) DeepCopyInto(out *AzureIdentityBindingSpec) {
	*out = *in
	out.LabelSelector = in.LabelSelector.DeepCopy()
}

// DeepCopyInto copies in into out.
func (in *AzureIdentityBinding) DeepCopyInto(out *AzureIdentityBinding) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureIdentityBinding) DeepCopy() *AzureIdentityBinding {
	if in == nil {
		return nil
	}
	out := new(AzureIdentityBinding)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzureIdentityBinding) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzureIdentityBindingList) DeepCopyInto(out *AzureIdentityBindingList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AzureIdentityBinding, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureIdentityBindingList) DeepCopy() *AzureIdentityBindingList {
	if in == nil {
		return nil
	}
	out := new(AzureIdentityBindingList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzureIdentityBindingList) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzureAssignedIdentitySpec) DeepCopyInto(out *AzureAssignedIdentitySpec) {
	*out = *in
	out.AzureIdentityRef = in.AzureIdentityRef.DeepCopy()
	out.AzureBindingRef = in.AzureBindingRef.DeepCopy()
	out.Replicas = copyInt32(in.Replicas)
}

// DeepCopyInto copies in into out.
func (in *AzureAssignedIdentityStatus) DeepCopyInto(out *AzureAssignedIdentityStatus) {
	*out = *in
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies in into out.
func (in *AzureAssignedIdentity) DeepCopyInto(out *AzureAssignedIdentity) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	in.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureAssignedIdentity) DeepCopy() *AzureAssignedIdentity {
	if in == nil {
		return nil
	}
	out := new(AzureAssignedIdentity)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzureAssignedIdentity) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzureAssignedIdentityList) DeepCopyInto(out *AzureAssignedIdentityList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AzureAssignedIdentity, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureAssignedIdentityList) DeepCopy() *AzureAssignedIdentityList {
	if in == nil {
		return nil
	}
	out := new(AzureAssignedIdentityList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzureAssignedIdentityList) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzurePodIdentityExceptionSpec) DeepCopyInto(out *AzurePodIdentityExceptionSpec) {
	*out = *in
	if in.PodLabels != nil {
		out.PodLabels = make(map[string]string, len(in.PodLabels))
		for k, v := range in.PodLabels {
			out.PodLabels[k] = v
		}
	}
}

// DeepCopyInto copies in into out.
func (in *AzurePodIdentityException) DeepCopyInto(out *AzurePodIdentityException) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzurePodIdentityException) DeepCopy() *AzurePodIdentityException {
	if in == nil {
		return nil
	}
	out := new(AzurePodIdentityException)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzurePodIdentityException) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *AzurePodIdentityExceptionList) DeepCopyInto(out *AzurePodIdentityExceptionList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]AzurePodIdentityException, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzurePodIdentityExceptionList) DeepCopy() *AzurePodIdentityExceptionList {
	if in == nil {
		return nil
	}
	out := new(AzurePodIdentityExceptionList)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *AzurePodIdentityExceptionList) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureIdentitySpec) DeepCopy() *AzureIdentitySpec {
	if in == nil {
		return nil
	}
	out := new(AzureIdentitySpec)
	in.DeepCopyInto(out)
	return out
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureIdentityBindingSpec) DeepCopy() *AzureIdentityBindingSpec {
	if in == nil {
		return nil
	}
	out := new(AzureIdentityBindingSpec)
	in.DeepCopyInto(out)
	return out
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureAssignedIdentitySpec) DeepCopy() *AzureAssignedIdentitySpec {
	if in == nil {
		return nil
	}
	out := new(AzureAssignedIdentitySpec)
	in.DeepCopyInto(out)
	return out
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzureAssignedIdentityStatus) DeepCopy() *AzureAssignedIdentityStatus {
	if in == nil {
		return nil
	}
	out := new(AzureAssignedIdentityStatus)
	in.DeepCopyInto(out)
	return out
}

// DeepCopy returns a deep copy of in, or nil if in is nil.
func (in *AzurePodIdentityExceptionSpec) DeepCopy() *AzurePodIdentityExceptionSpec {
	if in == nil {
		return nil
	}
	out := new(AzurePodIdentityExceptionSpec)
	in.DeepCopyInto(out)
	return out
}
