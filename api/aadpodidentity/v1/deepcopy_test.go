package v1_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

var timeType = reflect.TypeFor[time.Time]()

// fill sets every exported leaf reachable from v to a value derived from
// seed, allocating pointers, slices (two elements) and maps (two entries).
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", seed))
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed))
	case reflect.Uint8:
		v.SetUint(uint64('a' + seed))
	case reflect.Bool:
		v.SetBool(seed%2 == 1)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, seed*10+i)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, seed)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Unix(int64(1700000000+seed), 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed)
			}
		}
	}
}

// mutate overwrites every leaf reachable from v in place, through the
// existing pointers, slices and maps, so shared memory shows up in the
// original.
func mutate(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			mutate(v.Elem(), seed)
		}
	case reflect.Slice:
		for i := range v.Len() {
			mutate(v.Index(i), seed)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, seed)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if v.Type() == timeType {
			fill(v, seed)
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				mutate(v.Field(i), seed)
			}
		}
	default:
		fill(v, seed)
	}
}

func allObjects() []runtime.Object {
	return []runtime.Object{
		&v1.AzureIdentity{}, &v1.AzureIdentityList{},
		&v1.AzureIdentityBinding{}, &v1.AzureIdentityBindingList{},
		&v1.AzureAssignedIdentity{}, &v1.AzureAssignedIdentityList{},
		&v1.AzurePodIdentityException{}, &v1.AzurePodIdentityExceptionList{},
	}
}

func TestDeepCopyIsDeep(t *testing.T) {
	t.Parallel()
	for _, obj := range allObjects() {
		t.Run(reflect.TypeOf(obj).Elem().Name(), func(t *testing.T) {
			t.Parallel()
			fill(reflect.ValueOf(obj).Elem(), 1)
			want := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(runtime.Object)
			fill(reflect.ValueOf(want).Elem(), 1)

			cp := obj.DeepCopyObject()
			if diff := cmp.Diff(want, cp); diff != "" {
				t.Fatalf("copy differs from original (-want +got):\n%s", diff)
			}
			mutate(reflect.ValueOf(cp).Elem(), 2)
			if diff := cmp.Diff(want, obj); diff != "" {
				t.Fatalf("changing the copy changed the original (-want +got):\n%s", diff)
			}
			if cmp.Equal(want, cp) {
				t.Fatal("mutate did not change the copy; the test checks nothing")
			}
		})
	}
}

func TestDeepCopyNil(t *testing.T) {
	t.Parallel()
	var id *v1.AzureIdentity
	if got := id.DeepCopy(); got != nil {
		t.Fatalf("DeepCopy of nil = %v, want nil", got)
	}
	var aai *v1.AzureAssignedIdentity
	if got := aai.DeepCopy(); got != nil {
		t.Fatalf("DeepCopy of nil = %v, want nil", got)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, obj := range allObjects() {
		t.Run(reflect.TypeOf(obj).Elem().Name(), func(t *testing.T) {
			t.Parallel()
			fill(reflect.ValueOf(obj).Elem(), 3)
			clearManagedFields(reflect.ValueOf(obj).Elem())
			b, err := json.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
			if err := json.Unmarshal(b, got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(obj, got); diff != "" {
				t.Fatalf("JSON round trip changed the object (-want +got):\n%s", diff)
			}
		})
	}
}

// clearManagedFields drops metadata.managedFields (its FieldsV1 must hold
// valid JSON, which fill does not produce) wherever it occurs.
func clearManagedFields(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			clearManagedFields(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			clearManagedFields(v.Index(i))
		}
	case reflect.Struct:
		if f := v.FieldByName("ManagedFields"); f.IsValid() && f.Kind() == reflect.Slice {
			f.Set(reflect.Zero(f.Type()))
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				clearManagedFields(v.Field(i))
			}
		}
	}
}
