// inline-controller stands in for what kubelet does for a CSI ephemeral inline
// volume, so that csi-sanity's node tests can publish a tlsmint volume.
//
// csi-sanity gets the volume it publishes from a controller's CreateVolume and
// passes that volume's volume_context to NodePublishVolume. tlsmint-csi has no
// controller service: kubelet itself builds the volume context of an inline
// volume: the pod's volumeAttributes, to which it adds the pod info, the pod's
// tokens and csi.storage.k8s.io/ephemeral=true. This program serves
// csi-sanity's --csi.controllerendpoint with the Identity service and
// CreateVolume / DeleteVolume only, and builds the volume context the same way:
// CreateVolume's parameters (csi-sanity's --csi.testvolumeparameters, standing
// for the volumeAttributes) plus the keys of the JSON object read from
// --kubelet-context (they win, as kubelet's own keys do). The volume id is
// derived from the requested name (the same name gives the same id). Nothing
// is stored.
//
// Usage: inline-controller --endpoint /path/to/socket --kubelet-context ctx.json
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type identity struct {
	csi.UnimplementedIdentityServer
}

func (identity) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: "inline-controller.tlsmint.local", VendorVersion: "0"}, nil
}

func (identity) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{Capabilities: []*csi.PluginCapability{{
		Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{
			Type: csi.PluginCapability_Service_CONTROLLER_SERVICE,
		}},
	}}}, nil
}

func (identity) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

type controller struct {
	csi.UnimplementedControllerServer
	kubeletContext map[string]string
}

func (c controller) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{
			Type: csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		}},
	}}}, nil
}

func (c controller) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	sum := sha256.Sum256([]byte(req.GetName()))
	volumeContext := make(map[string]string, len(req.GetParameters())+len(c.kubeletContext))
	for k, v := range req.GetParameters() {
		volumeContext[k] = v
	}
	for k, v := range c.kubeletContext {
		volumeContext[k] = v
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      "csi-" + hex.EncodeToString(sum[:16]),
		VolumeContext: volumeContext,
	}}, nil
}

func (c controller) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	return &csi.DeleteVolumeResponse{}, nil
}

func main() {
	endpoint := flag.String("endpoint", "", "Unix socket to serve on (created; an old socket file is replaced)")
	contextFile := flag.String("kubelet-context", "", "JSON object (string values): the keys kubelet adds to an inline volume's context")
	flag.Parse()
	if *endpoint == "" || *contextFile == "" {
		fmt.Fprintln(os.Stderr, "usage: inline-controller --endpoint SOCKET --kubelet-context FILE.json")
		os.Exit(2)
	}
	data, err := os.ReadFile(*contextFile)
	if err != nil {
		log.Fatalf("reading --kubelet-context: %v", err)
	}
	var kubeletContext map[string]string
	if err := json.Unmarshal(data, &kubeletContext); err != nil {
		log.Fatalf("--kubelet-context %s: expected a JSON object of strings: %v", *contextFile, err)
	}
	if err := os.Remove(*endpoint); err != nil && !os.IsNotExist(err) {
		log.Fatalf("removing the old socket %s: %v", *endpoint, err)
	}
	listener, err := net.Listen("unix", *endpoint)
	if err != nil {
		log.Fatalf("listening on %s: %v", *endpoint, err)
	}
	server := grpc.NewServer()
	csi.RegisterIdentityServer(server, identity{})
	csi.RegisterControllerServer(server, controller{kubeletContext: kubeletContext})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		server.Stop()
	}()
	log.Printf("inline-controller serving on %s", *endpoint)
	if err := server.Serve(listener); err != nil {
		log.Fatalf("serving: %v", err)
	}
}
